//! Persistence (`--state FILE`): the shop is loaded at start if the file exists, written
//! atomically (temp file + rename) by a background task at most every second when something
//! changed, and once more at shutdown. Also the seed file (`--seed-products-from-skus FILE`):
//! one product per line, `SKU[;name[;regular_price[;stock_quantity[;tax_class]]]]` (tab works as
//! well as `;`), `#` comments; SKUs that already exist are skipped.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::error::{Result, StandinError};
use crate::products::NewProduct;
use crate::shared::Shared;
use crate::state::ShopState;

/// Reads a state file; `Ok(None)` if it does not exist.
pub fn load(path: &Path) -> Result<Option<ShopState>> {
    let err = |m: String| StandinError::StateFile {
        path: path.to_path_buf(),
        message: m,
    };
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| err(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(err(e.to_string())),
    }
}

/// Writes the state file now (no-op without one).
pub fn save(shared: &Shared) -> Result<()> {
    let Some(path) = &shared.state_file else {
        return Ok(());
    };
    let err = |m: String| StandinError::StateFile {
        path: path.clone(),
        message: m,
    };
    let _writer = crate::shared::lock(&shared.save_lock);
    shared.dirty.store(false, Ordering::SeqCst);
    let json = {
        let shop = shared.shop();
        serde_json::to_vec_pretty(&*shop).map_err(|e| err(e.to_string()))?
    };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json).map_err(|e| err(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// Background saver; ends when the server shuts down.
pub fn spawn_autosave(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    if shared.state_file.is_none() {
        return;
    }
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(1000)) => {}
                _ = stop.changed() => break,
            }
            if shared.dirty.load(Ordering::SeqCst)
                && let Err(e) = save(&shared)
            {
                tracing::warn!("saving state: {e}");
            }
        }
    });
}

/// Parses a seed file into products.
pub fn read_seed(path: &Path) -> Result<Vec<NewProduct>> {
    let text = std::fs::read_to_string(path).map_err(|e| StandinError::SeedFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split([';', '\t']).map(str::trim).collect();
        let sku = parts.first().copied().unwrap_or_default().to_string();
        if sku.is_empty() {
            continue;
        }
        let name = parts
            .get(1)
            .filter(|s| !s.is_empty())
            .map(|s| s.to_string())
            .unwrap_or_else(|| format!("Produkt {sku}"));
        let price = parts
            .get(2)
            .filter(|s| !s.is_empty())
            .map(|s| s.replace(',', "."))
            .unwrap_or_else(|| "10.00".into());
        let stock = parts
            .get(3)
            .and_then(|s| s.parse::<i64>().ok())
            .or(Some(10));
        let tax_class = parts.get(4).map(|s| s.to_string()).unwrap_or_default();
        out.push(NewProduct {
            sku,
            name,
            regular_price: price,
            stock_quantity: stock,
            tax_class,
            ..NewProduct::default()
        });
    }
    Ok(out)
}
