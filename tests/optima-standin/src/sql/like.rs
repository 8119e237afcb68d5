//! T-SQL's LIKE: `%`, `_`, `[abc]`, `[a-z]`, `[^abc]`, an optional ESCAPE
//! character, and case-insensitive over all of Unicode (Polish_CI_AS: Ł
//! matches ł). Installed as SQLite's `like()` so the LIKE operator uses it.

#[derive(Debug)]
enum Tok {
    Any,
    One,
    Lit(char),
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

fn fold(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

fn compile(pattern: &str, escape: Option<char>) -> Vec<Tok> {
    let p: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        if Some(c) == escape && i + 1 < p.len() {
            out.push(Tok::Lit(fold(p[i + 1])));
            i += 2;
            continue;
        }
        match c {
            '%' => {
                if !matches!(out.last(), Some(Tok::Any)) {
                    out.push(Tok::Any);
                }
            }
            '_' => out.push(Tok::One),
            '[' => {
                if let Some(end) = p[i + 1..].iter().position(|&x| x == ']').map(|e| e + i + 1) {
                    let mut body = &p[i + 1..end];
                    let negated = body.first() == Some(&'^');
                    if negated {
                        body = &body[1..];
                    }
                    let mut ranges = Vec::new();
                    let mut k = 0;
                    while k < body.len() {
                        if k + 2 < body.len() && body[k + 1] == '-' {
                            ranges.push((fold(body[k]), fold(body[k + 2])));
                            k += 3;
                        } else {
                            ranges.push((fold(body[k]), fold(body[k])));
                            k += 1;
                        }
                    }
                    out.push(Tok::Class { negated, ranges });
                    i = end + 1;
                    continue;
                }
                out.push(Tok::Lit('['));
            }
            c => out.push(Tok::Lit(fold(c))),
        }
        i += 1;
    }
    out
}

fn one(t: &Tok, c: char) -> bool {
    match t {
        Tok::One => true,
        Tok::Lit(l) => *l == c,
        Tok::Class { negated, ranges } => {
            ranges.iter().any(|(a, b)| *a <= c && c <= *b) != *negated
        }
        Tok::Any => false,
    }
}

/// True when `value` matches the T-SQL LIKE `pattern`.
pub fn like(pattern: &str, value: &str, escape: Option<char>) -> bool {
    let toks = compile(pattern, escape);
    let s: Vec<char> = value.chars().map(fold).collect();
    let (mut ti, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if ti < toks.len() && !matches!(toks[ti], Tok::Any) && one(&toks[ti], s[si]) {
            ti += 1;
            si += 1;
        } else if ti < toks.len() && matches!(toks[ti], Tok::Any) {
            star = Some((ti, si));
            ti += 1;
        } else if let Some((st, ss)) = star {
            ti = st + 1;
            si = ss + 1;
            star = Some((st, ss + 1));
        } else {
            return false;
        }
    }
    while ti < toks.len() && matches!(toks[ti], Tok::Any) {
        ti += 1;
    }
    ti == toks.len()
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn tsql_like() {
        assert!(like("%łódź%", "Sklep ŁÓDŹ Bałuty", None));
        assert!(like("SPO-00%", "spo-000017", None));
        assert!(!like("SPO-00%", "CHE-000017", None));
        assert!(like("[A-C]%", "Bielsko", None));
        assert!(!like("[^A-C]%", "Bielsko", None));
        assert!(like("a_c", "abc", None));
        assert!(!like("a_c", "abbc", None));
        assert!(like("100!%", "100%", Some('!')));
        assert!(!like("100!%", "1000", Some('!')));
        assert!(like("%", "", None));
        assert!(!like("a", "ą", None), "accent-sensitive");
    }
}
