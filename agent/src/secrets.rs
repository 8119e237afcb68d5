//! Secrets: a value that never shows in logs or debug output, and where
//! the SQL password may come from besides the configuration (the Windows
//! Credential Manager).

use std::fmt;

use serde::Deserialize;

/// A value that must never be printed, zeroed in memory when dropped
/// (`secrecy`).
#[derive(Clone)]
pub struct Secret(secrecy::SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(secrecy::SecretString::from(value.into()))
    }

    /// The value, for the one place that uses it (the SQL connection).
    pub fn expose(&self) -> &str {
        use secrecy::ExposeSecret;
        self.0.expose_secret()
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.expose() == other.expose()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A secret from the Windows Credential Manager.
pub fn read_credential(target: &str) -> Result<Secret, String> {
    #[cfg(windows)]
    return windows::read_credential(target);
    #[cfg(not(windows))]
    Err(format!(
        "= `{target}`: the Windows Credential Manager exists on Windows only; use OPTIMA_SYNC_SQL__PASSWORD or sql.password_file"
    ))
}

#[cfg(windows)]
mod windows {
    use std::ffi::OsStr;
    use std::os::windows::ffi::OsStrExt;

    use super::Secret;

    fn wide(s: &OsStr) -> Vec<u16> {
        s.encode_wide().chain(std::iter::once(0)).collect()
    }

    /// A generic credential from the Windows Credential Manager of the account
    /// this process runs as (`cmdkey /generic:TARGET /user:sync /pass`).
    pub fn read_credential(target: &str) -> Result<Secret, String> {
        use windows_sys::Win32::Security::Credentials::{
            CRED_TYPE_GENERIC, CREDENTIALW, CredFree, CredReadW,
        };
        let name = wide(OsStr::new(target));
        let mut credential: *mut CREDENTIALW = std::ptr::null_mut();
        // SAFETY: a valid NUL-terminated name and an out pointer; freed with CredFree below.
        let found = unsafe { CredReadW(name.as_ptr(), CRED_TYPE_GENERIC, 0, &mut credential) };
        if found == 0 || credential.is_null() {
            return Err(format!(
                "= `{target}`: no generic credential of that name in the Credential Manager of the account the agent runs as ({})",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: CredReadW succeeded, so `credential` points to a CREDENTIALW whose
        // blob holds CredentialBlobSize bytes.
        let secret = unsafe {
            let c = &*credential;
            let bytes = std::slice::from_raw_parts(c.CredentialBlob, c.CredentialBlobSize as usize);
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|p| u16::from_le_bytes([p[0], p[1]]))
                .collect();
            let text = String::from_utf16(&units);
            CredFree(credential as *const _);
            text
        };
        match secret {
            Ok(text) if !text.is_empty() => Ok(Secret::new(text)),
            Ok(_) => Err(format!("= `{target}`: the credential's password is empty")),
            Err(_) => Err(format!(
                "= `{target}`: the credential's password is not UTF-16 text"
            )),
        }
    }
}
