//! `#[cached]`: memoize a function in an OmniCache memory cache. Use it through the facade,
//! `omnicache::cached` (feature `macros`); the generated code names `::omnicache`.
//!
//! ```ignore
//! use omnicache::cached;
//!
//! #[cached(capacity = 10_000, ttl = 60)]
//! fn user_name(id: u64) -> String {
//!     expensive_lookup(id)
//! }
//! ```
//!
//! - **Sync and async**: an `async fn` is cached in an `omnicache::future::Cache`, a plain `fn`
//!   in an `omnicache::sync::Cache`.
//! - **Single flight**: however many callers ask for one key at once, the body runs once and
//!   they all get its value (`get_with` / `try_get_with`).
//! - **`Result`**: a function returning `Result<T, E>` caches only `Ok` values; an error goes to
//!   every caller waiting on that run and is not stored (`E: Clone + Send + Sync + 'static`, as
//!   waiters share it). `cache_errors` caches the whole `Result` instead.
//! - **The cache**: by default a static named `<FN>_CACHE` (or `name = IDENT`) next to the
//!   function, with `capacity` entries (default 1,000) and an optional `ttl` (seconds, or a
//!   `Duration` expression); or your own instance with `cache = EXPR` (anything with the memory
//!   cache's `get_with`, such as a `static LazyLock<Cache<K, V>>` built with a mock clock).
//! - **The key**: the arguments (cloned; one argument is its own key, several make a tuple), or
//!   `key = EXPR` over the arguments with `key_type = TYPE` when the macro makes the cache.
//!
//! Not supported (each is a compile error saying what to do): methods (`self`), generic
//! functions, functions without a return value, argument patterns other than names, reference
//! arguments without a `key`, and `ttl`/`capacity`/`name` together with `cache`.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{
    Error, Expr, FnArg, GenericArgument, Ident, ItemFn, Lit, Pat, PathArguments, ReturnType, Token,
    Type,
};

/// Memoizes a function; see the [crate documentation](crate).
#[proc_macro_attribute]
pub fn cached(attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = syn::parse_macro_input!(attr as Options);
    let func = syn::parse_macro_input!(item as ItemFn);
    match expand(options, func) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

#[derive(Default)]
struct Options {
    name: Option<Ident>,
    cache: Option<Expr>,
    capacity: Option<Expr>,
    ttl: Option<Expr>,
    key: Option<Expr>,
    key_type: Option<Type>,
    cache_errors: bool,
}

impl Parse for Options {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut o = Options::default();
        while !input.is_empty() {
            let ident: Ident = input.parse()?;
            let name = ident.to_string();
            if name == "cache_errors" {
                o.cache_errors = true;
            } else {
                input.parse::<Token![=]>()?;
                match name.as_str() {
                    "name" => o.name = Some(input.parse()?),
                    "cache" => o.cache = Some(input.parse()?),
                    "capacity" => o.capacity = Some(input.parse()?),
                    "ttl" => o.ttl = Some(input.parse()?),
                    "key" => o.key = Some(input.parse()?),
                    "key_type" => o.key_type = Some(input.parse()?),
                    _ => {
                        return Err(Error::new(
                            ident.span(),
                            format!(
                                "unknown #[cached] option `{name}`; expected name, cache, capacity, ttl, key, key_type or cache_errors"
                            ),
                        ))
                    }
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(o)
    }
}

/// The `T` of a return type spelled `Result<T, ..>` (any path ending in `Result`).
fn ok_type(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    match args.args.first()? {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    quote!(#ty).to_string().contains("impl ")
}

fn expand(o: Options, func: ItemFn) -> syn::Result<TokenStream2> {
    let sig = &func.sig;
    if let Some(r) = sig.receiver() {
        return Err(Error::new(
            r.span(),
            "#[cached] does not support methods (`self`): cache a free function, or call `Cache::get_with` in the method",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(Error::new(
            sig.generics.span(),
            "#[cached] does not support generic functions: one cache cannot hold every instantiation; use `Cache::get_with` with a concrete cache",
        ));
    }
    let ret = match &sig.output {
        ReturnType::Type(_, t) => t.as_ref().clone(),
        ReturnType::Default => {
            return Err(Error::new(
                sig.ident.span(),
                "#[cached] needs a function that returns a value to cache",
            ))
        }
    };
    if o.cache.is_some() && (o.ttl.is_some() || o.capacity.is_some() || o.name.is_some()) {
        return Err(Error::new(
            Span::call_site(),
            "`ttl`, `capacity` and `name` configure the cache #[cached] creates; with `cache = ...` configure your cache where you build it",
        ));
    }
    let mut names = Vec::new();
    let mut types = Vec::new();
    for arg in &sig.inputs {
        let FnArg::Typed(pt) = arg else { continue };
        let Pat::Ident(pi) = pt.pat.as_ref() else {
            return Err(Error::new(
                pt.pat.span(),
                "#[cached] needs plain argument names (no patterns), to build the key from them",
            ));
        };
        if o.key.is_none() && matches!(pt.ty.as_ref(), Type::Reference(_)) {
            return Err(Error::new(
                pt.ty.span(),
                format!(
                    "argument `{}` is a reference and cannot be part of a stored key; give one, e.g. `key = {}.to_owned(), key_type = ...`",
                    pi.ident, pi.ident
                ),
            ));
        }
        names.push(pi.ident.clone());
        types.push(pt.ty.as_ref().clone());
    }
    let is_async = sig.asyncness.is_some();
    let fallible = !o.cache_errors && ok_type(&ret).is_some();
    let value_type =
        if fallible { ok_type(&ret).cloned().unwrap_or(ret.clone()) } else { ret.clone() };

    let (key_expr, key_type) = match (&o.key, &o.key_type) {
        (Some(k), kt) => (quote!(#k), kt.as_ref().map(|t| quote!(#t))),
        (None, _) if names.len() == 1 => {
            let (n, t) = (&names[0], &types[0]);
            (quote!(::std::clone::Clone::clone(&#n)), Some(quote!(#t)))
        }
        (None, _) => (
            quote!(( #( ::std::clone::Clone::clone(&#names), )* )),
            Some(quote!(( #( #types, )* ))),
        ),
    };

    let fn_name = &sig.ident;
    let uncached = format_ident!("__omnicache_uncached_{}", fn_name);
    let mut inner_sig = sig.clone();
    inner_sig.ident = uncached.clone();
    let body = &func.block;
    let (static_item, cache_expr) = match &o.cache {
        Some(c) => (quote!(), quote!((#c))),
        None => {
            let Some(key_type) = key_type else {
                return Err(Error::new(
                    Span::call_site(),
                    "a custom `key` needs `key_type = TYPE` when #[cached] creates the cache",
                ));
            };
            if contains_impl_trait(&value_type) {
                return Err(Error::new(
                    ret.span(),
                    "#[cached] cannot store an `impl Trait` value: return a concrete type",
                ));
            }
            let static_name = o
                .name
                .clone()
                .unwrap_or_else(|| format_ident!("{}_CACHE", fn_name.to_string().to_uppercase()));
            let kind = if is_async { quote!(future) } else { quote!(sync) };
            let capacity = o.capacity.clone().unwrap_or_else(|| syn::parse_quote!(1_000));
            let ttl = match &o.ttl {
                None => quote!(),
                Some(Expr::Lit(l)) if matches!(l.lit, Lit::Int(_)) => {
                    quote_spanned!(l.span()=> .time_to_live(::std::time::Duration::from_secs(#l)))
                }
                Some(Expr::Lit(l)) if matches!(l.lit, Lit::Float(_)) => {
                    quote_spanned!(l.span()=> .time_to_live(::std::time::Duration::from_secs_f64(#l)))
                }
                Some(e) => quote!(.time_to_live(#e)),
            };
            let vis = &func.vis;
            let doc = format!("The cache of [`{fn_name}`], made by `#[cached]`.");
            (
                quote! {
                    #[doc = #doc]
                    #vis static #static_name: ::std::sync::LazyLock<::omnicache::#kind::Cache<#key_type, #value_type>> =
                        ::std::sync::LazyLock::new(|| {
                            ::omnicache::#kind::Cache::builder().max_capacity(#capacity) #ttl .build()
                        });
                },
                quote!(#static_name),
            )
        }
    };
    let call = quote!(#uncached( #( #names ),* ));
    let lookup = match (is_async, fallible) {
        (false, false) => quote!(#cache_expr.get_with(__omnicache_key, move || #call)),
        (false, true) => quote!(#cache_expr
            .try_get_with(__omnicache_key, move || #call)
            .map_err(::std::sync::Arc::unwrap_or_clone)),
        (true, false) => quote!(#cache_expr.get_with(__omnicache_key, #call).await),
        (true, true) => quote!(#cache_expr
            .try_get_with(__omnicache_key, #call)
            .await
            .map_err(::std::sync::Arc::unwrap_or_clone)),
    };
    let attrs = &func.attrs;
    let vis = &func.vis;
    Ok(quote! {
        #static_item
        #( #attrs )*
        #vis #sig {
            #inner_sig #body
            let __omnicache_key = #key_expr;
            #lookup
        }
    })
}
