//! Backup codes: what an operator with TOTP on signs in with when the
//! phone is lost, instead of asking another operator to reset their TOTP.
//!
//! Ten codes are made when TOTP goes on and again on request from
//! `/console/account` (which needs the password or a current code); each is
//! shown once, on that page, and works once in place of the app's code at
//! the sign-in's second step, under the same rate limits. A new set
//! replaces the old one whole.
//!
//! A code: 10 characters from 31 that cannot be read as one another (no
//! `0`/`o`, `1`/`l`/`i`), shown as `xxxxx-xxxxx`: about 49.5 random bits.
//! Typed codes are read case-blind, with spaces and dashes ignored.
//!
//! Stored: only each code's SHA-256 (over the operator's e-mail and the
//! code), as a string set `totp_backup_codes` on the operator's item. Why
//! not argon2 as for passwords: a password is chosen by a person, so a
//! leaked hash falls to a dictionary unless each guess is slow; these codes
//! are random, and an offline guess at one of them still takes about 2^49
//! hashes. Online guessing is held by the sign-in's rate limits. And whoever
//! can read the operator's item reads the TOTP secret beside the hashes,
//! which is worth more than any backup code: a slow hash would guard
//! nothing that item does not already give away. A plain hash also lets one
//! conditional write find and spend a code (`contains` + `DELETE` on the
//! set), so two sign-ins racing with the same code cannot both succeed,
//! with no argon2 round per stored code on each attempt.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};

use super::totp::TotpSecret;
use super::{Auth, Lang, Slots, StateError, sha256_hex};
use crate::dynamo::{n, s, written};

/// Codes in a set.
pub(super) const CODES_PER_SET: usize = 10;
/// Characters in a code.
const CODE_CHARS: usize = 10;
/// Lower-case letters and digits, less those read alike: `0`/`o`,
/// `1`/`l`/`i`.
const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
/// The operator item's attribute holding the set's hashes.
pub(super) const CODES_ATTRIBUTE: &str = "totp_backup_codes";

/// A fresh set: the codes to show once, and the hashes to store.
pub(super) struct BackupCodes {
    shown: Vec<SecretString>,
    hashes: Vec<String>,
}

impl std::fmt::Debug for BackupCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackupCodes([{} REDACTED])", self.shown.len())
    }
}

impl BackupCodes {
    /// Ten new, distinct codes for the operator `email`.
    pub(super) fn generate(email: &str) -> BackupCodes {
        let mut rng = rand::rng();
        let mut codes: Vec<String> = Vec::with_capacity(CODES_PER_SET);
        // Distinct because DynamoDB refuses a string set with a repeated
        // element (two equal codes in ten: about 1 in 10^14).
        while codes.len() < CODES_PER_SET {
            let code: String = (0..CODE_CHARS)
                .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
                .collect();
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        let hashes = codes.iter().map(|code| hash(email, code)).collect();
        BackupCodes {
            shown: codes.into_iter().map(SecretString::from).collect(),
            hashes,
        }
    }

    /// The codes as the operator writes them down: `xxxxx-xxxxx`.
    pub(super) fn shown(&self) -> impl Iterator<Item = String> + '_ {
        self.shown.iter().map(|code| grouped(code.expose_secret()))
    }

    pub(super) fn stored(&self) -> AttributeValue {
        AttributeValue::Ss(self.hashes.clone())
    }
}

/// A typed code in its stored form: lower case, without spaces and dashes;
/// `None` unless it is ten characters of the alphabet.
pub(super) fn normalized(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let fits = code.len() == CODE_CHARS && code.bytes().all(|b| ALPHABET.contains(&b));
    fits.then_some(code)
}

/// What is stored for a code (normalized) of the operator `email`: the
/// e-mail binds a hash to its operator, so the same code elsewhere (never
/// in practice) would not match.
pub(super) fn hash(email: &str, code: &str) -> String {
    sha256_hex(&format!("console-backup-code\n{email}\n{code}"))
}

fn grouped(code: &str) -> String {
    let (first, second) = code.split_at(code.len() / 2);
    format!("{first}-{second}")
}

/// How many codes an operator's item holds.
pub(super) fn left_in(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    item.get(CODES_ATTRIBUTE)
        .and_then(|value| value.as_ss().ok())
        .map_or(0, Vec::len)
}

/// What a backup code checked under the rate limits came to.
pub(super) enum BackupChecked {
    /// Right and now spent; `left` codes remain.
    Right { left: usize },
    /// Not a code of the operator's current set, or spent already (the set
    /// keeps no spent codes, so the two look alike).
    WrongOrUsed,
    Throttled {
        until: DateTime<Utc>,
        by: &'static str,
    },
}

impl Auth {
    /// Replaces the operator's backup codes with a new set (the old ones
    /// stop working); false when TOTP is off or its secret changed.
    pub(super) async fn replace_backup_codes(
        &self,
        email: &str,
        secret: &TotpSecret,
        codes: &BackupCodes,
        now: DateTime<Utc>,
    ) -> Result<bool, StateError> {
        let out = written(
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(format!("operator#{email}")))
                .key("sk", s("operator"))
                .update_expression("SET #codes = :codes, totp_backup_codes_at = :now")
                .condition_expression("totp_secret = :secret")
                .expression_attribute_names("#codes", CODES_ATTRIBUTE)
                .expression_attribute_values(":codes", codes.stored())
                .expression_attribute_values(":now", n(now.timestamp_millis()))
                .expression_attribute_values(":secret", s(secret.base32()))
                .send()
                .await,
        )
        .map_err(|e| self.error("UpdateItem", &e))?;
        Ok(out.is_some())
    }

    /// Spends a code: removes its hash from the set only if it is there
    /// (one conditional write, so of two requests with the same code only
    /// one gets `Some`); the codes left, `None` for a code not in the set.
    async fn spend_backup_code(
        &self,
        email: &str,
        secret: &TotpSecret,
        hash: &str,
    ) -> Result<Option<usize>, StateError> {
        let out = written(
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(format!("operator#{email}")))
                .key("sk", s("operator"))
                .update_expression("DELETE #codes :spent")
                .condition_expression("totp_secret = :secret AND contains(#codes, :hash)")
                .expression_attribute_names("#codes", CODES_ATTRIBUTE)
                .expression_attribute_values(":spent", AttributeValue::Ss(vec![hash.to_owned()]))
                .expression_attribute_values(":hash", s(hash))
                .expression_attribute_values(":secret", s(secret.base32()))
                .return_values(ReturnValue::AllNew)
                .send()
                .await,
        )
        .map_err(|e| self.error("UpdateItem", &e))?;
        Ok(out.map(|out| out.attributes.as_ref().map_or(0, left_in)))
    }

    /// Checks a typed backup code under the rate limits (the slots are
    /// taken first and given back only for a right, unspent code), and
    /// spends it when it is right.
    pub(super) async fn check_backup_code(
        &self,
        email: &str,
        secret: &TotpSecret,
        address: &str,
        typed: &str,
        now: DateTime<Utc>,
    ) -> Result<BackupChecked, StateError> {
        let (account, address) = match self.take_slots(email, address, now).await? {
            Slots::Taken { account, address } => (account, address),
            Slots::Full { until, by } => return Ok(BackupChecked::Throttled { until, by }),
        };
        let Some(code) = normalized(typed) else {
            return Ok(BackupChecked::WrongOrUsed);
        };
        let spent = match self
            .spend_backup_code(email, secret, &hash(email, &code))
            .await
        {
            Ok(spent) => spent,
            Err(err) => {
                self.give_back(account).await;
                self.give_back(address).await;
                return Err(err);
            }
        };
        let Some(left) = spent else {
            return Ok(BackupChecked::WrongOrUsed);
        };
        self.give_back(account).await;
        self.give_back(address).await;
        Ok(BackupChecked::Right { left })
    }
}

/// A new set, shown once, with what to do with it.
pub(super) fn shown_once(lang: Lang, codes: &BackupCodes) -> Markup {
    html! {
        section class="notice" role="status" {
            h3 { (lang.t("Nowe kody zapasowe", "New backup codes")) }
            p {
                (lang.t("Zapisz je teraz (wydrukuj albo przechowaj w menedżerze haseł): są pokazywane tylko raz. Każdy działa jeden raz zamiast kodu z aplikacji, gdy nie masz telefonu. Poprzednie kody już nie działają.",
                        "Save them now (print them or keep them in a password manager): they are shown only once. Each works once instead of the app's code when you do not have your phone. Any earlier codes no longer work."))
            }
            ol id="backup-codes" {
                @for code in codes.shown() {
                    li { code { (code) } }
                }
            }
        }
    }
}

/// The backup code's field on the sign-in's second step.
pub(super) fn backup_code_field(lang: Lang, id: &str) -> Markup {
    html! {
        label for=(id) { (lang.t("Kod zapasowy", "Backup code")) }
        input id=(id) name="backup_code" type="text" autocomplete="off" autocapitalize="none"
            spellcheck="false" minlength="10" maxlength="13" required;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_ten_distinct_codes_of_the_unambiguous_alphabet_grouped_five_and_five() {
        let codes = BackupCodes::generate("ala@example.pl");
        let shown: Vec<String> = codes.shown().collect();
        assert_eq!(shown.len(), CODES_PER_SET);
        let distinct: std::collections::BTreeSet<&String> = shown.iter().collect();
        assert_eq!(distinct.len(), CODES_PER_SET, "{shown:?}");
        for code in &shown {
            let (first, second) = code.split_once('-').expect("xxxxx-xxxxx");
            assert_eq!((first.len(), second.len()), (5, 5), "{code}");
            assert!(
                code.bytes()
                    .filter(|b| *b != b'-')
                    .all(|b| ALPHABET.contains(&b)),
                "{code}"
            );
        }
        for ambiguous in [b'0', b'o', b'1', b'l', b'i'] {
            assert!(!ALPHABET.contains(&ambiguous), "{}", char::from(ambiguous));
        }
        // A second set shares no code with the first.
        let again: Vec<String> = BackupCodes::generate("ala@example.pl").shown().collect();
        assert!(again.iter().all(|code| !shown.contains(code)));
    }

    #[test]
    fn only_the_hashes_are_stored_and_each_matches_its_code_as_typed() {
        let email = "ala@example.pl";
        let codes = BackupCodes::generate(email);
        let AttributeValue::Ss(stored) = codes.stored() else {
            panic!("a string set");
        };
        assert_eq!(stored.len(), CODES_PER_SET);
        for (code, hash_stored) in codes.shown().zip(&stored) {
            assert!(!hash_stored.contains(&code.replace('-', "")));
            assert_eq!(hash_stored.len(), 64, "SHA-256 in hex");
            // As shown, without the dash, in upper case, with spaces.
            for typed in [
                code.clone(),
                code.replace('-', ""),
                code.to_uppercase(),
                format!(" {} ", code.replace('-', " ")),
            ] {
                let normal = normalized(&typed).expect("a code's form");
                assert_eq!(&hash(email, &normal), hash_stored, "{typed}");
            }
            // Bound to its operator.
            let normal = normalized(&code).expect("a code's form");
            assert_ne!(&hash("ewa@example.pl", &normal), hash_stored);
        }
        let debug = format!("{codes:?}");
        for code in codes.shown() {
            assert!(!debug.contains(&code.replace('-', "")), "{debug}");
        }
    }

    #[test]
    fn typed_text_that_is_no_code_is_refused_before_any_lookup() {
        for bad in [
            "",
            "abcde-fghj",
            "abcde-fghjkm",
            "abcde-fgh0k",
            "abcde-fghlk",
            "123456",
            "abcde_fghjk",
            "ąbcde-fghjk",
        ] {
            assert_eq!(normalized(bad), None, "{bad}");
        }
        assert_eq!(normalized("ABCDE-FGHJK").as_deref(), Some("abcdefghjk"));
    }
}
