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
    // Ctrl-C, SIGTERM and SIGHUP alike (the engine's handler); the terminal may be gone.
    crate::release::signals::cancel_on_signals(|sig| {
        let _ = writeln!(
            std::io::stderr(),
            "\n{sig}: aborting before the switch; the live color keeps serving. (A switch already under way completes.)"
        );
    })
}

pub async fn deploy(ctx: &Context, reference: &str, force: bool, args: &ActionArgs) -> Result<i32> {
    if let Err(e) = validate_ref(reference) {
        eprintln!("error: {e}");
        return Ok(exit::USAGE);
    }
    let action = if force {
        Action::Redeploy
    } else {
        Action::Deploy
    };
    release(ctx, action, Target::Ref(reference.to_string()), args).await
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
    release(ctx, Action::Rollback, target, args).await
}

async fn release(ctx: &Context, action: Action, target: Target, args: &ActionArgs) -> Result<i32> {
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
    // One environment rollback goes to one SHA; hosts whose ledgers disagree need a REF.
    if action == Action::Rollback
        && target == Target::Previous
        && let Err(e) = crate::release::ledger::agree_on_target(
            &planned
                .iter()
                .map(|p| (p.host.clone(), p.to_sha.clone()))
                .collect::<Vec<_>>(),
        )
    {
        eprintln!("error: {e}");
        close_all(hosts).await;
        return Ok(exit::USAGE);
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
        take_over_stale: args.take_over_stale,
    };
    let notifier = crate::monitor::notify::Notifier::from_env();
    let mut code = exit::OK;
    let mut results: Vec<(String, String)> = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        // The confirmed plan is pinned: re-planned under the lock, it must still match.
        let pin = if args.yes {
            planned[i].pin().target_only()
        } else {
            planned[i].pin()
        };
        let mut r =
            crate::release::execute::run_pinned(host.clone(), &service, &pin, &opts, &events).await;
        if let Err(ReleaseError::Locked {
            takeover_possible: true,
            holder,
            ..
        }) = &r
            && !args.yes
            && offer_take_over(host.name(), holder)
        {
            let mut o = opts.clone();
            o.take_over_stale = true;
            r = crate::release::execute::run_pinned(host.clone(), &service, &pin, &o, &events)
                .await;
        }
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
                    "{} ({}) in {}",
                    outcome.plan.to_sha,
                    outcome.plan.to_color,
                    format_duration(std::time::Duration::from_millis(outcome.duration_ms))
                ),
            )),
            Err(e) => {
                drop(events);
                let _ = printer.await;
                eprintln!("\nerror: {e}");
                code = e.exit_code();
                results.push((host.name().to_string(), "FAILED (see above)".to_string()));
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

/// On a terminal, offers to take over a stale lock (the CLI flag is --take-over-stale).
fn offer_take_over(host: &str, holder: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    let _ = write!(
        std::io::stderr(),
        "{host}: the lock is stale: {holder}.\nTake it over (recorded in the audit log)? [y/N] "
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim(), "y" | "Y" | "yes")
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
            Ok(s) => match (s.live_color, s.live_sha) {
                (Some(c), Some(sha)) => format!("{sha} ({c})"),
                (Some(c), None) => c.to_string(),
                _ => "nothing".into(),
            },
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
        match prune::plan_on_host(h, &service, keep).await {
            Ok(p) => plans.push(p),
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

pub async fn unlock(ctx: &Context, args: &ActionArgs, force: bool) -> Result<i32> {
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
        let req = lock::UnlockRequest {
            service: &service.name,
            actor: &who,
            env: &ctx.env.name,
            force,
        };
        match lock::unlock(h, &req, &state).await {
            Ok(warning) => {
                if let Some(w) = warning {
                    eprintln!("WARNING: {}: {w}", h.name());
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
