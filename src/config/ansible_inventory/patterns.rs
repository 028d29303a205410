//! Host patterns: `web[01:03].example.com`, `db-[a:c]`, `host:2222`.

use super::model::{Var, Vars};

/// Expands a host pattern into host names, each with the port its pattern names (if any).
pub(super) fn expand_host_pattern(pattern: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let (name, port) = split_port(pattern);
    let names = expand_ranges(name)?;
    Ok(names.into_iter().map(|n| (n, port.clone())).collect())
}

/// `host:22` → (`host`, Some("22")). IPv6 addresses (several colons) keep their colons;
/// `[2001:db8::1]:22` is the way to give one a port.
pub(super) fn split_port(pattern: &str) -> (&str, Option<String>) {
    let digits = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = pattern.strip_prefix('[')
        && let Some((address, tail)) = rest.split_once(']')
        && address.matches(':').count() > 1
    {
        let port = tail.strip_prefix(':').filter(digits);
        return (address, port.map(str::to_owned));
    }
    // Colons inside `[...]` ranges are not ports: look after the last `]` only.
    let tail_start = pattern.rfind(']').map_or(0, |i| i + 1);
    let tail = &pattern[tail_start..];
    if tail.matches(':').count() == 1
        && let Some((_, port)) = tail.split_once(':')
        && digits(&port)
    {
        let name_end = pattern.len() - port.len() - 1;
        return (&pattern[..name_end], Some(port.to_owned()));
    }
    (pattern, None)
}

/// A `host:port` name sets the host's `ansible_port`, as Ansible does; the host's explicit
/// variables come after it and win.
pub(super) fn with_port(port: Option<String>, vars: &Vars) -> Vars {
    port.map(|p| ("ansible_port".to_owned(), Var::Text(p)))
        .into_iter()
        .chain(vars.iter().cloned())
        .collect()
}

pub(super) fn expand_ranges(name: &str) -> Result<Vec<String>, String> {
    let Some(open) = name.find('[') else {
        return Ok(vec![name.to_owned()]);
    };
    let Some(close_rel) = name[open..].find(']') else {
        return Err(format!("`{name}`: `[` without `]`"));
    };
    let close = open + close_rel;
    let (head, range, tail) = (&name[..open], &name[open + 1..close], &name[close + 1..]);
    let parts: Vec<&str> = range.split(':').collect();
    let (start, end, stride) = match parts.as_slice() {
        [start, end] => (*start, *end, "1"),
        [start, end, stride] => (*start, *end, *stride),
        _ => {
            return Err(format!(
                "`{name}`: a range is [start:end] or [start:end:stride]"
            ));
        }
    };
    let stride: usize = stride
        .parse()
        .ok()
        .filter(|&s| s > 0)
        .ok_or_else(|| format!("`{name}`: stride `{stride}` is not a positive number"))?;

    let items: Vec<String> = if let (Ok(a), Ok(b)) = (start.parse::<u64>(), end.parse::<u64>()) {
        if a > b {
            return Err(format!("`{name}`: range start {a} is after its end {b}"));
        }
        if (b - a) / stride as u64 > MAX_PATTERN_HOSTS as u64 {
            return Err(format!(
                "`{name}`: the range names more than {MAX_PATTERN_HOSTS} hosts"
            ));
        }
        let width = if start.len() > 1 && start.starts_with('0') {
            start.len()
        } else {
            0
        };
        (a..=b)
            .step_by(stride)
            .map(|n| format!("{n:0width$}"))
            .collect()
    } else {
        let (Some(a), Some(b)) = (single_letter(start), single_letter(end)) else {
            return Err(format!(
                "`{name}`: range [{range}] is neither numeric nor single letters"
            ));
        };
        if a > b {
            return Err(format!(
                "`{name}`: range start `{a}` is after its end `{b}`"
            ));
        }
        (a..=b).step_by(stride).map(|c| c.to_string()).collect()
    };

    let rests = expand_ranges(tail)?;
    if items.len().saturating_mul(rests.len()) > MAX_PATTERN_HOSTS {
        return Err(format!(
            "`{name}`: the pattern names more than {MAX_PATTERN_HOSTS} hosts"
        ));
    }
    let mut out = Vec::with_capacity(items.len() * rests.len());
    for item in &items {
        for rest in &rests {
            out.push(format!("{head}{item}{rest}"));
        }
    }
    Ok(out)
}

/// More hosts than this from one pattern is a typo, not a fleet.
const MAX_PATTERN_HOSTS: usize = 10_000;

fn single_letter(s: &str) -> Option<char> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() => Some(c),
        _ => None,
    }
}
