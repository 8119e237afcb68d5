//! A platform lives in its own module: outside `src/shop/<platform>*.rs`,
//! the configuration enum (`src/shops.rs`) and the module list of
//! `src/shop/mod.rs`, no code of the functions names a platform (comments
//! and tests may). So adding a platform touches only its module, its
//! stand-in and the configuration enum; a handler that started to branch
//! on a platform fails here with the line.

use std::path::{Path, PathBuf};

const PLATFORMS: [&str; 5] = ["woocommerce", "woo", "wc", "allegro", "shoper"];

/// `WooCommerce`, `woo_order`, `ALLEGRO_URL` → lower-case words.
fn words(identifier: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    for c in identifier.chars() {
        if c == '_' || !c.is_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Platform names in the code of `text` (before its tests), by line.
fn platform_mentions(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") {
            break;
        }
        if code.starts_with("//") {
            continue;
        }
        let code = code.split(" //").next().unwrap_or(code);
        let tokens = code.split(|c: char| !(c.is_alphanumeric() || c == '_'));
        if tokens
            .flat_map(words)
            .any(|word| PLATFORMS.contains(&word.as_str()))
        {
            found.push((n + 1, line.trim().to_owned()));
        }
    }
    found
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the source folder") {
        let path = entry.expect("a source entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Where a platform may be named.
fn platform_home(relative: &str) -> bool {
    let Some(name) = relative.strip_prefix("shop/") else {
        return relative == "shops.rs";
    };
    PLATFORMS.iter().any(|p| name.starts_with(p))
}

#[test]
fn only_a_platforms_own_module_and_the_configuration_name_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    assert!(files.len() > 20, "found {} sources", files.len());
    let mut problems = Vec::new();
    for file in &files {
        let relative = file
            .strip_prefix(&root)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        if platform_home(&relative) {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("a readable source");
        for (line, code) in platform_mentions(&text) {
            // The module list registers each platform's module.
            if relative == "shop/mod.rs" && code.starts_with("pub mod ") {
                continue;
            }
            problems.push(format!("src/{relative}:{line}: {code}"));
        }
    }
    assert!(
        problems.is_empty(),
        "platform names outside their modules:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_sees_a_platform_in_any_spelling() {
    for code in [
        "let woo = WooCommerce::new(config);",
        "if shop.platform == \"allegro\" {",
        "use crate::shop::shoper_order::parse;",
        "const WC_HEADER: &str = \"x\";",
    ] {
        assert_eq!(platform_mentions(code).len(), 1, "{code}");
    }
    for code in [
        "fn apply(err: ShopError) -> Wood {}",
        "// WooCommerce answers 200",
        "let shops = Shops::from_env(env, true); // allegro too",
    ] {
        assert!(platform_mentions(code).is_empty(), "{code}");
    }
}
