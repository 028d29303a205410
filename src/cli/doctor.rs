//! `deckhand doctor`: asks `crate::doctor` for the checks and prints one row per check, with
//! the fix under each one that did not pass.

use color_eyre::eyre::Result;

use super::host_text::{clean, clean_lines};
use super::output::Table;
use super::{Context, OutputFormat};
use crate::doctor::{Check, Report, Status};
use crate::exit;

pub async fn run(ctx: &Context, names: &[String]) -> Result<i32> {
    let mut specs = Vec::new();
    for n in names {
        match ctx.env.hosts.iter().find(|h| &h.name == n) {
            Some(h) => specs.push(h.clone()),
            None => {
                eprintln!(
                    "error: host `{n}` is not in environment `{}` (hosts: {})",
                    ctx.env.name,
                    ctx.env
                        .hosts
                        .iter()
                        .map(|h| h.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return Ok(exit::USAGE);
            }
        }
    }
    if specs.is_empty() {
        specs = ctx.env.hosts.clone();
    }
    let report = crate::doctor::run(&ctx.config, &ctx.env, &specs, &ctx.services).await;
    if ctx.global.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&cleaned(&report))?);
    } else {
        print!("{}", render(&report));
    }
    Ok(report.exit_code())
}

fn cleaned(report: &Report) -> Report {
    let mut r = report.clone();
    let fix = |c: &mut Check| {
        c.detail = clean_lines(&c.detail);
        c.fix = c.fix.as_deref().map(clean_lines);
    };
    r.config.iter_mut().for_each(fix);
    for h in &mut r.hosts {
        h.host = clean(&h.host);
        h.checks.iter_mut().for_each(fix);
    }
    r
}

fn status_cell(s: Status) -> &'static str {
    match s {
        Status::Pass => "ok",
        Status::Warn => "WARN",
        Status::Fail => "FAIL",
        Status::Skip => "skipped",
    }
}

fn render(report: &Report) -> String {
    let mut out = format!("doctor: environment {}\n\n", report.env);
    let mut t = Table::new(["HOST", "CHECK", "RESULT", "DETAIL"]);
    let mut fixes = Vec::new();
    let mut row = |host: &str, c: &Check, t: &mut Table| {
        // Multi-line details (an ssh error with its own fix) go on one row; the rest below.
        let mut lines = c.detail.lines();
        t.row([
            clean(host),
            c.check.label().to_string(),
            status_cell(c.status).to_string(),
            clean(lines.next().unwrap_or("")),
        ]);
        if matches!(c.status, Status::Fail | Status::Warn) {
            let mut text: Vec<String> = lines.map(|l| clean(l.trim())).collect();
            if let Some(f) = &c.fix {
                text.push(format!("Fix: {}", clean(f)));
            }
            fixes.push(format!(
                "{} / {}:\n  {}",
                clean(host),
                c.check.label(),
                text.join("\n  ")
            ));
        }
    };
    for c in &report.config {
        row("-", c, &mut t);
    }
    for h in &report.hosts {
        for c in &h.checks {
            row(&h.host, c, &mut t);
        }
    }
    out.push_str(&t.render(""));
    if !fixes.is_empty() {
        out.push_str("\nWhat to do:\n");
        for f in fixes {
            out.push_str(&f);
            out.push('\n');
        }
    }
    let failed = report
        .config
        .iter()
        .chain(report.hosts.iter().flat_map(|h| &h.checks))
        .filter(|c| c.status == Status::Fail)
        .count();
    let unreachable = report.hosts.iter().filter(|h| !h.reachable).count();
    out.push_str(&format!(
        "\n{} host(s), {unreachable} unreachable, {failed} check(s) failed\n",
        report.hosts.len()
    ));
    out
}
