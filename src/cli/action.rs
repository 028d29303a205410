//! `deploy`, `rollback`, `prune`, `unlock`: plan on every host, confirm, act host by host.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use color_eyre::eyre::Result;
use futures_util::future::join_all;
use tokio_util::sync::CancellationToken;

use super::output::Table;
use super::{ActionArgs, Context, OutputFormat};
use crate::config::{HostSpec, Service};
use crate::exit;
use crate::release::audit::{self, AuditRecord};
use crate::release::execute::plan_on_host;
use crate::release::plan::{Action, validate_ref};
use crate::release::{
    ActionOptions, DeployPlan, Event, EventSink, ReleaseError, Target, actor, lock, prune,
};
use crate::state::read_service;
use crate::transport::Host;
use crate::util::{format_bytes, format_duration};

fn refuse_if_read_only(ctx: &Context) -> Option<i32> {
    if ctx.global.read_only || ctx.env.read_only {
        eprintln!(
            "error: refused: {} (nothing that changes a host may run)",
            if ctx.global.read_only {
                "--read-only is set".to_string()
            } else {
                format!(
                    "environment `{}` is read_only in {}",
                    ctx.env.name,
                    ctx.config.path.display()
                )
            }
        );
        return Some(exit::USAGE);
    }
    None
}

fn select_hosts(ctx: &Context, names: &[String]) -> Result<Vec<HostSpec>, String> {
    if names.is_empty() {
        return Ok(ctx.env.hosts.clone());
    }
    names
        .iter()
        .map(|n| {
            ctx.env
                .hosts
                .iter()
                .find(|h| &h.name == n)
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "host `{n}` is not in environment `{}` (hosts: {})",
                        ctx.env.name,
                        ctx.env
                            .hosts
                            .iter()
                            .map(|h| h.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
        })
        .collect()
}

fn one_service(ctx: &Context) -> Result<&Service, String> {
    match ctx.services.as_slice() {
        [s] => Ok(s),
        many => Err(format!(
            "this config has several services ({}); name one with --service",
            many.iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Connects to every host at once; all must answer before anything changes.
async fn connect_all(specs: &[HostSpec]) -> Result<Vec<Arc<Host>>, i32> {
    let results = join_all(specs.iter().map(Host::connect)).await;
    let mut hosts = Vec::new();
    let mut failed = false;
    for r in results {
        match r {
            Ok(h) => hosts.push(Arc::new(h)),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        eprintln!(
            "nothing was changed on any host: every host must be reachable before an action starts"
        );
        for h in hosts {
            if let Ok(h) = Arc::try_unwrap(h) {
                h.close().await;
            }
        }
        return Err(exit::UNREACHABLE);
    }
    Ok(hosts)
}

async fn close_all(hosts: Vec<Arc<Host>>) {
    for h in hosts {
        if let Ok(h) = Arc::try_unwrap(h) {
            h.close().await;
        }
    }
}

/// Asks the operator, unless `--yes`. Protected environments want the environment's name typed.
fn confirm(
    ctx: &Context,
    args: &ActionArgs,
    question: &str,
    equivalent: &str,
) -> Result<bool, i32> {
    if args.yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        eprintln!(
            "error: refusing to act without confirmation: stdin is not a terminal.\n  Fix: pass --yes (e.g. `{equivalent} --yes`)"
        );
        return Err(exit::USAGE);
    }
    let mut stderr = std::io::stderr();
    if ctx.env.protected {
        let _ = write!(
            stderr,
            "{question}\nEnvironment `{0}` is protected: type `{0}` to confirm: ",
            ctx.env.name
        );
    } else {
        let _ = write!(stderr, "{question}\nProceed? [y/N] ");
    }
    let _ = stderr.flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    let answer = line.trim();
    Ok(if ctx.env.protected {
        answer == ctx.env.name
    } else {
        matches!(answer, "y" | "Y" | "yes")
    })
}

/// Prints events as they come: human lines or JSON lines.
fn spawn_printer(format: OutputFormat) -> (EventSink, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let handle = tokio::spawn(async move {
        let mut last_health = String::new();
        while let Some(e) = rx.recv().await {
            if format == OutputFormat::Json {
                if let Ok(line) = serde_json::to_string(&e) {
                    println!("{line}");
                }
                continue;
            }
            let line = match &e {
                Event::StepStarted { host, step, detail } => {
                    format!("[{host}] ▸ {}{}", step.label(), suffix(detail))
                }
                Event::StepFinished {
                    host,
                    step,
                    elapsed_ms,
                    detail,
                } => format!(
                    "[{host}] ✓ {} ({}){}",
                    step.label(),
                    format_duration(std::time::Duration::from_millis(*elapsed_ms)),
                    suffix(detail)
                ),
                Event::StepFailed { host, step, .. } => format!("[{host}] ✗ {}", step.label()),
                Event::PullProgress {
                    host,
                    layer,
                    status,
                    current,
                    ..
                } => {
                    if current.is_some() {
                        continue;
                    }
                    format!("[{host}]   pull {layer} {status}")
                }
                Event::HealthAttempt {
                    host,
                    color,
                    attempt,
                    healthy,
                    detail,
                } => {
                    // One line per change of answer, not one per probe.
                    if *detail == last_health && !healthy {
                        continue;
                    }
                    last_health.clone_from(detail);
                    format!("[{host}]   health #{attempt} {color}: {detail}")
                }
                Event::Switched { host, from, to } => format!(
                    "[{host}]   traffic: {} → {to}",
                    from.map_or("-", crate::state::Color::as_str)
                ),
                Event::Info { host, message } => format!("[{host}]   {message}"),
                e @ Event::Watch { .. } => crate::release::watch::describe_event(e),
            };
            eprintln!("{line}");
        }
    });
    (EventSink::new(tx), handle)
}

fn suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

fn cancel_on_ctrl_c() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\nCtrl-C: aborting before the switch; the live color keeps serving. (A switch already under way completes; a watch stops and switches nothing back: both colors keep running.)"
            );
            t.cancel();
        }
    });
    token
}

pub async fn deploy(
    ctx: &Context,
    reference: &str,
    force: bool,
    canary: Option<u8>,
    args: &ActionArgs,
) -> Result<i32> {
    if let Err(e) = validate_ref(reference) {
        eprintln!("error: {e}");
        return Ok(exit::USAGE);
    }
    let action = if force {
        Action::Redeploy
    } else {
        Action::Deploy
    };
    release(
        ctx,
        action,
        Target::Ref(reference.to_string()),
        args,
        canary,
    )
    .await
}

/// `promote`: a deploy of the release in canary, which then takes all traffic (issue 13).
pub async fn promote_to(ctx: &Context, sha: &str, args: &ActionArgs) -> Result<i32> {
    let mut args = args.clone();
    args.watch = Some(args.watch.unwrap_or_default());
    release(
        ctx,
        Action::Deploy,
        Target::Ref(sha.to_string()),
        &args,
        None,
    )
    .await
}

pub async fn rollback(ctx: &Context, reference: Option<&str>, args: &ActionArgs) -> Result<i32> {
    let target = match reference {
        Some(r) => {
            if let Err(e) = validate_ref(r) {
                eprintln!("error: {e}");
                return Ok(exit::USAGE);
            }
            Target::Ref(r.to_string())
        }
        None => Target::Previous,
    };
    release(ctx, Action::Rollback, target, args, None).await
}

async fn release(
    ctx: &Context,
    action: Action,
    target: Target,
    args: &ActionArgs,
    canary: Option<u8>,
) -> Result<i32> {
    if let Some(code) = refuse_if_read_only(ctx) {
        return Ok(code);
    }
    let (service, specs) = match (one_service(ctx), select_hosts(ctx, &args.hosts)) {
        (Ok(s), Ok(h)) => (s.clone(), h),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return Ok(exit::USAGE);
        }
    };
    let hosts = match connect_all(&specs).await {
        Ok(h) => h,
        Err(code) => return Ok(code),
    };
    // Plan everywhere first: the operator confirms the whole picture, and a plan that cannot
    // work on one host stops the action before any host changed.
    let plans = join_all(
        hosts
            .iter()
            .map(|h| plan_on_host(h, &service, &target, action)),
    )
    .await;
    let mut planned: Vec<DeployPlan> = Vec::new();
    for p in plans {
        match p {
            Ok((plan, _)) => planned.push(plan),
            Err(e) => {
                eprintln!("error: {e}");
                close_all(hosts).await;
                return Ok(if matches!(e, ReleaseError::Plan { .. }) {
                    exit::USAGE
                } else {
                    e.exit_code()
                });
            }
        }
    }
    let mut question = format!(
        "{} {} in {} ({} host{}), one host at a time:\n",
        action.as_str(),
        service.name,
        ctx.env.name,
        planned.len(),
        if planned.len() == 1 { "" } else { "s" }
    );
    for p in &planned {
        question.push_str(&format!("  {}\n", p.summary()));
    }
    let equivalent = format!(
        "deckhand {} {} --env {} --service {}",
        if action == Action::Redeploy {
            "deploy --force"
        } else {
            action.as_str()
        },
        match &target {
            Target::Ref(r) => r.as_str(),
            Target::Previous => "",
        },
        ctx.env.name,
        service.name
    );
    match confirm(ctx, args, question.trim_end(), &equivalent) {
        Ok(true) => {}
        Ok(false) => {
            eprintln!("cancelled; nothing changed");
            close_all(hosts).await;
            return Ok(exit::ACTION_FAILED);
        }
        Err(code) => {
            close_all(hosts).await;
            return Ok(code);
        }
    }
    if args.yes {
        eprint!("{question}");
    }

    let (events, printer) = spawn_printer(ctx.global.output);
    let opts = ActionOptions {
        env: ctx.env.name.clone(),
        actor: actor::current(),
        lock_wait: args.lock_wait,
        health_timeout: args.timeout,
        cancel: cancel_on_ctrl_c(),
        watch: args.watch,
        canary,
    };
    let notifier = crate::monitor::notify::Notifier::from_env();
    let mut code = exit::OK;
    let mut results: Vec<(String, String)> = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        // Each host is re-planned inside the lock; the earlier plan was for the operator.
        let r = crate::release::execute::run(
            host.clone(),
            &service,
            target.clone(),
            action,
            &opts,
            &events,
        )
        .await;
        if notifier.enabled() {
            let what = match &r {
                Ok(o) => format!("succeeded: {}", o.plan.summary()),
                Err(e) => format!("FAILED: {}", e.to_string().lines().next().unwrap_or("")),
            };
            notifier
                .send(&format!(
                    "[deckhand] {} of {} in {} on {} {what}",
                    action.as_str(),
                    service.name,
                    ctx.env.name,
                    host.name()
                ))
                .await;
        }
        match r {
            Ok(outcome) => results.push((
                outcome.host.clone(),
                format!(
                    "{} ({}){} in {}",
                    outcome.plan.to_sha,
                    outcome.plan.to_color,
                    canary.map_or(String::new(), |p| format!(" canary {p} %")),
                    format_duration(std::time::Duration::from_millis(outcome.duration_ms))
                ),
            )),
            Err(e) => {
                drop(events);
                let _ = printer.await;
                eprintln!("\nerror: {e}");
                code = e.exit_code();
                let what = if matches!(e, ReleaseError::RolledBack { .. }) {
                    "ROLLED BACK by the watch (see above)"
                } else {
                    "FAILED (see above)"
                };
                results.push((host.name().to_string(), what.to_string()));
                for rest in &hosts[i + 1..] {
                    results.push((rest.name().to_string(), "not attempted".to_string()));
                }
                print_where(ctx, &service, &hosts, &results).await;
                close_all(hosts).await;
                return Ok(code);
            }
        }
    }
    drop(events);
    let _ = printer.await;
    print_where(ctx, &service, &hosts, &results).await;
    close_all(hosts).await;
    Ok(code)
}

/// After an action: exactly which host runs which SHA now, read back from the hosts.
async fn print_where(
    ctx: &Context,
    service: &Service,
    hosts: &[Arc<Host>],
    results: &[(String, String)],
) {
    let now = join_all(hosts.iter().map(|h| read_service(h, service))).await;
    let mut t = Table::new(["HOST", "THIS RUN", "LIVE NOW"]);
    for ((h, st), (_, result)) in hosts.iter().zip(now).zip(results) {
        let live = match st {
            Ok(s) => {
                let live = match (s.live_color, &s.live_sha) {
                    (Some(c), Some(sha)) => format!("{sha} ({c})"),
                    (Some(c), None) => c.to_string(),
                    _ => "nothing".into(),
                };
                match &s.settling {
                    Some(n) => format!("{live}, {n}"),
                    None => live,
                }
            }
            Err(e) => format!("unknown: {e}"),
        };
        t.row([h.name().to_string(), result.clone(), live]);
    }
    if ctx.global.output == OutputFormat::Table {
        eprint!("\n{}", t.render(""));
    }
}

pub async fn prune(
    ctx: &Context,
    keep: Option<usize>,
    dry_run: bool,
    args: &ActionArgs,
) -> Result<i32> {
    if !dry_run && let Some(code) = refuse_if_read_only(ctx) {
        return Ok(code);
    }
    let (service, specs) = match (one_service(ctx), select_hosts(ctx, &args.hosts)) {
        (Ok(s), Ok(h)) => (s.clone(), h),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return Ok(exit::USAGE);
        }
    };
    let keep = keep.unwrap_or(service.keep_images).max(1);
    let hosts = match connect_all(&specs).await {
        Ok(h) => h,
        Err(code) => return Ok(code),
    };
    let mut plans = Vec::new();
    for h in &hosts {
        match read_service(h, &service).await {
            Ok(st) => plans.push(prune::plan_prune(h.name(), &st, keep)),
            Err(e) => {
                eprintln!("error: {}: {e}", h.name());
                close_all(hosts).await;
                return Ok(exit::ACTION_FAILED);
            }
        }
    }
    let mut text = String::new();
    for p in &plans {
        text.push_str(&format!(
            "{}: keep {} ({}), remove {} ({})\n",
            p.host,
            p.kept.len(),
            p.kept.join(", "),
            p.remove.len(),
            format_bytes(p.reclaim_bytes)
        ));
        for r in &p.remove {
            text.push_str(&format!(
                "  - {} ({}, {})\n",
                r.tag,
                r.created,
                format_bytes(r.size_bytes)
            ));
        }
    }
    if dry_run {
        if ctx.global.output == OutputFormat::Json {
            println!("{}", serde_json::to_string_pretty(&plans)?);
        } else {
            println!("{text}(dry run: nothing removed)");
        }
        close_all(hosts).await;
        return Ok(exit::OK);
    }
    if plans.iter().all(|p| p.remove.is_empty()) {
        println!("{text}nothing to prune");
        close_all(hosts).await;
        return Ok(exit::OK);
    }
    let equivalent = format!(
        "deckhand prune --keep {keep} --env {} --service {}",
        ctx.env.name, service.name
    );
    match confirm(
        ctx,
        args,
        &format!(
            "prune {} in {}:\n{}",
            service.name,
            ctx.env.name,
            text.trim_end()
        ),
        &equivalent,
    ) {
        Ok(true) => {}
        Ok(false) => {
            eprintln!("cancelled; nothing removed");
            close_all(hosts).await;
            return Ok(exit::ACTION_FAILED);
        }
        Err(code) => {
            close_all(hosts).await;
            return Ok(code);
        }
    }
    let who = actor::current();
    let mut code = exit::OK;
    for h in &hosts {
        let r = prune::run_on_host(
            h,
            &service,
            keep,
            &ctx.env.name,
            &who,
            args.lock_wait,
            &EventSink::none(),
        )
        .await;
        match r {
            Ok((p, removed)) => println!(
                "{}: removed {} image(s): {} ({} reclaimed)",
                h.name(),
                removed.len(),
                removed.join(", "),
                format_bytes(p.reclaim_bytes)
            ),
            Err(e) => {
                eprintln!("error: {e}");
                code = e.exit_code();
                break;
            }
        }
    }
    close_all(hosts).await;
    Ok(code)
}

pub async fn unlock(ctx: &Context, args: &ActionArgs) -> Result<i32> {
    if let Some(code) = refuse_if_read_only(ctx) {
        return Ok(code);
    }
    let (service, specs) = match (one_service(ctx), select_hosts(ctx, &args.hosts)) {
        (Ok(s), Ok(h)) => (s.clone(), h),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return Ok(exit::USAGE);
        }
    };
    let hosts = match connect_all(&specs).await {
        Ok(h) => h,
        Err(code) => return Ok(code),
    };
    let who = actor::current();
    let mut code = exit::OK;
    for h in &hosts {
        let state = match lock::read(h, &service.name).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                code = e.exit_code();
                continue;
            }
        };
        let Some(state) = state else {
            println!("{}: {} is not locked", h.name(), service.name);
            continue;
        };
        let q = format!(
            "{}: {} is locked by {}.\nRemoving a lock that is NOT stale lets two deploys race.",
            h.name(),
            service.name,
            state.holder()
        );
        let equivalent = format!(
            "deckhand unlock --env {} --service {} --host {}",
            ctx.env.name,
            service.name,
            h.name()
        );
        match confirm(ctx, args, &q, &equivalent) {
            Ok(true) => {}
            Ok(false) => {
                println!("{}: left as it is", h.name());
                continue;
            }
            Err(c) => {
                code = c;
                break;
            }
        }
        match lock::force_remove(h, &service.name).await {
            Ok(()) => {
                let mut rec =
                    AuditRecord::now(&who, &ctx.env.name, h.name(), &service.name, "unlock");
                rec.outcome = "success".into();
                rec.details = Some(format!("removed the lock of {}", state.holder()));
                if let Err(e) = audit::append(h, &rec).await {
                    eprintln!(
                        "WARNING: {}: the unlock is not in the audit log: {e}",
                        h.name()
                    );
                }
                println!("{}: lock removed (was: {})", h.name(), state.holder());
            }
            Err(e) => {
                eprintln!("error: {e}");
                code = e.exit_code();
            }
        }
    }
    close_all(hosts).await;
    Ok(code)
}
