//! Keeping secrets out of what is shown: logs, errors, `Debug` output and API responses.

/// `url` with the password of its user info and of secret query parameters replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            let userinfo = &rest[..at];
            let shown = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                // `redis://SECRET@host`: some clients take a lone user info as the password.
                None => "***".to_string(),
            };
            out = format!("{}{shown}{}", &url[..scheme_end + 3], &rest[at..]);
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_secret_param(k) => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

fn is_secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "pass", "passwd", "secret", "token", "key"].iter().any(|s| n.contains(s))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_in_urls_are_replaced() {
        assert_eq!(
            redact_url("redis://:hunter2@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(redact_url("redis://app:hunter2@h:1"), "redis://app:***@h:1");
        assert_eq!(redact_url("redis://hunter2@h:1"), "redis://***@h:1");
        assert_eq!(
            redact_url("rediss://h:1/?password=hunter2&db=1"),
            "rediss://h:1/?password=***&db=1"
        );
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact_url("http://h/a@b"), "http://h/a@b", "an @ in the path is not user info");
    }
}
