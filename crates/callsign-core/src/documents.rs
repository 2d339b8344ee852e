//! Settings documents (`SettingStore`) that several endpoints change: one way to change one without losing a
//! concurrent write. [`modify`] reads the document, applies the change, and writes it with compare-and-set
//! (`replace_setting`); when another writer got in between it reads again and re-applies the change, so that
//! concurrent writes of different fields all stand, on one node or many.
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Core;

/// How many times [`modify`] reads again after losing a race.
pub const MODIFY_ATTEMPTS: usize = 16;

/// The document under `key`, or `T::default()` when none was written, as this node has it in memory
/// ([`crate::config_cache`]: its own writes at once, other nodes' within a quarter of a second). [`modify`] reads
/// the stored one.
pub async fn load<T: DeserializeOwned + Default>(app: &Core, key: &str) -> crate::BoxResult<T> {
    Ok(match app.cache.setting(app.store.as_ref(), key).await? {
        Some(v) => serde_json::from_value(v)?,
        None => T::default(),
    })
}

/// Read the document under `key` (`fresh()` when there is none), change it, and write it if it is still the one
/// read; otherwise start again, at most [`MODIFY_ATTEMPTS`] times. `change` may refuse (`Err(E)`): nothing is
/// written and its error comes back as the inner `Err`. `what` names the document in the error after the last try.
pub async fn modify<T, R, E>(
    app: &Core,
    key: &str,
    what: &str,
    mut fresh: impl FnMut() -> T,
    mut change: impl FnMut(&mut T) -> Result<R, E>,
) -> crate::BoxResult<Result<R, E>>
where
    T: Serialize + DeserializeOwned,
{
    for _ in 0..MODIFY_ATTEMPTS {
        let raw = app.store.get_setting(key).await?;
        let mut doc = match &raw {
            Some(v) => serde_json::from_value(v.clone())?,
            None => fresh(),
        };
        let out = match change(&mut doc) {
            Ok(out) => out,
            Err(e) => return Ok(Err(e)),
        };
        let v = serde_json::to_value(&doc)?;
        if app.store.replace_setting(key, raw.as_ref(), &v, app.clock.now()).await? {
            return Ok(Ok(out));
        }
    }
    Err(format!("the {what} kept changing while this write was retried").into())
}
