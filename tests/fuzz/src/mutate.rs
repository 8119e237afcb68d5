//! Byte-level and JSON-aware mutations of a seed.

use rand::Rng;
use rand::rngs::StdRng;

/// Tokens spliced in where a value or a structure would be: extreme
/// numbers (a scale of 28 and amounts at the money bound, so decimal
/// arithmetic reaches its limits), floats, nulls, nesting, non-ASCII, lone
/// surrogates, broken structure.
pub const TOKENS: &[&str] = &[
    "null",
    "true",
    "[]",
    "{}",
    "\"\"",
    "0",
    "-1",
    "1e309",
    "-0.0",
    "1.5",
    "1e-28",
    "0.0000000000000000000000000001",
    "\"0.0000000000000000000000000001\"",
    "\"1e-20\"",
    "\"10000000000\"",
    "\"-10000000000\"",
    "\"9999999999.9999999999\"",
    "79228162514264337593543950335",
    "18446744073709551616",
    "100000",
    "1000000000",
    "\"1e400\"",
    "\"-99999999999999999999999999999\"",
    "\"NaN\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"Zażółć gęślą jaźń\"",
    "\"2026-02-30T10:00:00\"",
    "\"+262143-12-31T23:59:60Z\"",
    "\"2026-01-01T23:59:60Z\"",
    "[[[[[[[[[[]]]]]]]]]]",
    "{\"id\":",
    "\"quantity\":",
    ",",
    ":",
    "\"",
    "\\",
];

/// Applies one to four mutations to `seed`.
pub fn mutate(rng: &mut StdRng, seed: &[u8]) -> Vec<u8> {
    let mut body = seed.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = body.len();
        match rng.random_range(0..10) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                body[i] ^= 1 << rng.random_range(0..8);
            }
            1 => {
                let i = rng.random_range(0..=len);
                let byte: u8 = rng.random();
                body.insert(i, byte);
            }
            2 if len > 1 => {
                let start = rng.random_range(0..len);
                let end = (start + rng.random_range(1..64)).min(len);
                body.drain(start..end);
            }
            3 if len > 1 => body.truncate(rng.random_range(0..len)),
            4..=6 => replace_value(rng, &mut body),
            7 if len > 2 => {
                // Duplicate a slice (repeated keys, doubled lines).
                let start = rng.random_range(0..len);
                let end = (start + rng.random_range(1..256)).min(len);
                let slice = body[start..end].to_vec();
                let at = rng.random_range(0..=body.len());
                body.splice(at..at, slice);
            }
            8 => repeat_array_element(rng, &mut body),
            _ => {
                let i = rng.random_range(0..=len);
                let token = TOKENS[rng.random_range(0..TOKENS.len())].as_bytes();
                body.splice(i..i, token.iter().copied());
            }
        }
    }
    body
}

/// Replaces what follows a `:` (a value) with a token.
fn replace_value(rng: &mut StdRng, body: &mut Vec<u8>) {
    let colons: Vec<usize> = positions(body, b':');
    if colons.is_empty() {
        return;
    }
    let at = colons[rng.random_range(0..colons.len())];
    let end = body[at + 1..]
        .iter()
        .position(|b| matches!(b, b',' | b'}' | b']'))
        .map_or(body.len(), |p| at + 1 + p);
    let token = TOKENS[rng.random_range(0..TOKENS.len())].as_bytes();
    body.splice(at + 1..end, token.iter().copied());
}

/// Repeats one `{…}` that directly follows `[` or `},` (an element of a
/// list of objects: order lines, fees, records) up to past the order line
/// bound, so size limits are reached, not only approached.
fn repeat_array_element(rng: &mut StdRng, body: &mut Vec<u8>) {
    let starts: Vec<usize> = (1..body.len())
        .filter(|&i| body[i] == b'{' && matches!(previous_non_space(body, i), Some(b'[' | b',')))
        .collect();
    if starts.is_empty() {
        return;
    }
    let start = starts[rng.random_range(0..starts.len())];
    let Some(end) = matching_brace(body, start) else {
        return;
    };
    let element = body[start..=end].to_vec();
    let copies = match rng.random_range(0..4) {
        0 => rng.random_range(1..8),
        1 => rng.random_range(990..1010),
        _ => rng.random_range(8..1200),
    };
    let mut repeated = Vec::with_capacity((element.len() + 1) * copies);
    for _ in 0..copies {
        repeated.push(b',');
        repeated.extend_from_slice(&element);
    }
    body.splice(end + 1..end + 1, repeated);
}

fn positions(body: &[u8], byte: u8) -> Vec<usize> {
    body.iter()
        .enumerate()
        .filter(|(_, b)| **b == byte)
        .map(|(i, _)| i)
        .collect()
}

fn previous_non_space(body: &[u8], i: usize) -> Option<u8> {
    body[..i]
        .iter()
        .rev()
        .copied()
        .find(|b| !b.is_ascii_whitespace())
}

/// The `}` closing the `{` at `start`, skipping strings.
fn matching_brace(body: &[u8], start: usize) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in body.iter().enumerate().skip(start) {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn repeating_an_element_keeps_the_json_valid() {
        let mut rng = StdRng::seed_from_u64(7);
        let seed = br#"{"a":[{"x":"}{"},{"y":1}],"b":2}"#;
        let mut body = seed.to_vec();
        repeat_array_element(&mut rng, &mut body);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(value["a"].as_array().unwrap().len() > 2, "{value}");
    }
}
