//! The server's OpenAPI v3 documents (upstream `client-go/openapi3`): the root lists one
//! document per group version, each fetched by its hashed URL and kept for the process.

use crate::client::{self, Error, RestClient};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

static DOCUMENTS: Mutex<Option<HashMap<String, Arc<Value>>>> = Mutex::new(None);

/// The document of `group/version` (`api/v1` for the core group), `None` when the
/// server publishes none.
pub async fn group_version(
    client: &RestClient,
    group: &str,
    version: &str,
) -> Result<Option<Arc<Value>>, Error> {
    let key = if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    };
    if let Some(doc) = DOCUMENTS.lock().unwrap().as_ref().and_then(|m| m.get(&key)) {
        return Ok(Some(doc.clone()));
    }
    let root = client.get_json("/openapi/v3", client::JSON).await?;
    let Some(url) = root["paths"][&key]["serverRelativeURL"].as_str() else {
        return Ok(None);
    };
    let doc = Arc::new(client.get_json(url, client::JSON).await?);
    DOCUMENTS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(key, doc.clone());
    Ok(Some(doc))
}
