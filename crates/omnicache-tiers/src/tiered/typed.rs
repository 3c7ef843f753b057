//! A typed face over a tiered cache: keys and values as Rust types, values through a [`Codec`]
//! (JSON by default, postcard with the `postcard` feature), so callers do not hand-encode bytes.

use super::{PutOptions, TieredCache};
use omnicache_core::{Codec, Encoding, Error, ErrorKind, JsonCodec, Result, TierEntry};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

/// A [`TieredCache`] seen through types. A key that serializes to a string is stored under that
/// string's bytes, so `TypedCache<String, _>` shares keys with the byte API and the server;
/// any other key is stored under its JSON text. Values are encoded with the codec, whose id is
/// recorded with each entry; reading an entry another codec wrote is an
/// [`ErrorKind::Codec`] error, as is a value that does not decode as `V`.
///
/// ```
/// use omnicache_tiers::tiered::{PutOptions, TieredCache, TypedCache};
///
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct User { name: String, visits: u32 }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let users: TypedCache<u64, User> = TypedCache::new(TieredCache::builder().build()?);
/// users.put(&7, &User { name: "Ada".into(), visits: 3 }, PutOptions::default()).await?;
/// assert_eq!(users.get(&7).await?.unwrap().visits, 3);
/// # Ok::<(), omnicache_core::Error>(())
/// # }).unwrap();
/// ```
pub struct TypedCache<K, V, C = JsonCodec> {
    cache: TieredCache,
    codec: C,
    _types: PhantomData<fn(K) -> V>,
}

impl<K, V, C: fmt::Debug> fmt::Debug for TypedCache<K, V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedCache")
            .field("cache", &self.cache)
            .field("codec", &self.codec)
            .finish()
    }
}

impl<K, V, C: Clone> Clone for TypedCache<K, V, C> {
    fn clone(&self) -> Self {
        TypedCache { cache: self.cache.clone(), codec: self.codec.clone(), _types: PhantomData }
    }
}

impl<K, V> TypedCache<K, V, JsonCodec>
where
    K: Serialize,
    V: Serialize + DeserializeOwned,
{
    /// Values as JSON.
    pub fn new(cache: TieredCache) -> Self {
        TypedCache::with_codec(cache, JsonCodec)
    }
}

impl<K, V, C> TypedCache<K, V, C>
where
    K: Serialize,
    V: Serialize + DeserializeOwned,
    C: Codec<V>,
{
    /// Values through `codec`.
    pub fn with_codec(cache: TieredCache, codec: C) -> Self {
        TypedCache { cache, codec, _types: PhantomData }
    }

    /// The byte cache underneath.
    pub fn inner(&self) -> &TieredCache {
        &self.cache
    }

    /// The bytes a key is stored under.
    pub fn key_bytes(key: &K) -> Result<Vec<u8>> {
        let json = serde_json::to_value(key)
            .map_err(|e| Error::new(ErrorKind::Codec, "encoding a key").with_source(e))?;
        Ok(match json {
            serde_json::Value::String(s) => s.into_bytes(),
            other => other.to_string().into_bytes(),
        })
    }

    fn decode(&self, entry: &TierEntry) -> Result<V> {
        let (wrote, reads) = (entry.encoding.codec, self.codec.id());
        if wrote != reads {
            return Err(Error::new(
                ErrorKind::Codec,
                format!("the entry was written by codec {wrote}; this cache reads codec {reads}"),
            ));
        }
        self.codec.decode(&entry.value)
    }

    /// The value for `key`, `None` on a miss.
    pub async fn get(&self, key: &K) -> Result<Option<V>> {
        match self.cache.get(&Self::key_bytes(key)?).await {
            Some(entry) => self.decode(&entry).map(Some),
            None => Ok(None),
        }
    }

    /// Stores `value` under `key`, as [`TieredCache::put`] does.
    pub async fn put(&self, key: &K, value: &V, options: PutOptions) -> Result<()> {
        let key = Self::key_bytes(key)?;
        let bytes = self.codec.encode(value)?;
        self.cache.put_encoded(&key, bytes, self.encoding(), options).await
    }

    /// Removes `key` everywhere; true if any layer had it.
    pub async fn remove(&self, key: &K) -> Result<bool> {
        Ok(self.cache.remove(&Self::key_bytes(key)?).await)
    }

    /// The value for `key`, loaded with `load` on a miss everywhere, as
    /// [`TieredCache::try_get_with`] does (one run per key; errors shared, not cached). The
    /// loader's error comes back as [`LoadError::Loader`], a codec failure as
    /// [`LoadError::Cache`].
    pub async fn try_get_with<E, F, Fut>(
        &self,
        key: &K,
        options: PutOptions,
        load: F,
    ) -> std::result::Result<V, LoadError<E>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<V, E>> + Send + 'static,
        E: Send + Sync + 'static,
        C: Clone,
    {
        let bytes = Self::key_bytes(key).map_err(LoadError::Cache)?;
        let codec = self.codec.clone();
        let load = || async move {
            let value = load().await.map_err(|e| Failed::Loader(Arc::new(e)))?;
            codec.encode(&value).map_err(Failed::Cache)
        };
        let entry = self
            .cache
            .try_get_with_encoding(&bytes, options, self.encoding(), load)
            .await
            .map_err(|e| match Arc::try_unwrap(e) {
                Ok(Failed::Loader(e)) => LoadError::Loader(e),
                Ok(Failed::Cache(e)) => LoadError::Cache(e),
                Err(shared) => match &*shared {
                    Failed::Loader(e) => LoadError::Loader(e.clone()),
                    Failed::Cache(e) => LoadError::Cache(Error::new(e.kind(), e.to_string())),
                },
            })?;
        self.decode(&entry).map_err(LoadError::Cache)
    }

    fn encoding(&self) -> Encoding {
        Encoding { codec: self.codec.id(), ..Encoding::RAW }
    }
}

/// Why a typed load failed.
#[derive(Debug)]
pub enum LoadError<E> {
    /// The loader's error, shared with every caller waiting on the same run.
    Loader(Arc<E>),
    /// Encoding the key or the value, or decoding what the cache held.
    Cache(Error),
}

impl<E: fmt::Display> fmt::Display for LoadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Loader(e) => write!(f, "the loader failed: {e}"),
            LoadError::Cache(e) => write!(f, "{e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for LoadError<E> {}

/// A typed load's failure inside the byte cache's single flight.
enum Failed<E> {
    Loader(Arc<E>),
    Cache(Error),
}
