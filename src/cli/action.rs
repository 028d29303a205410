//! `deploy`, `rollback`, `prune`, `unlock`: the engine's runner plans, this file asks on the
//! terminal and prints what happened.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use color_eyre::eyre::Result;
use tokio_util::sync::CancellationToken;

use super::output::Table;
use super::{ActionArgs, Context, OutputFormat};
use crate::config::HostSpec;
use crate::exit;
use crate::monitor::notify::Notifier;
use crate::release::plan::Target;
use crate::release::runner::{
    self, Confirmation, HostPlan, PinMode, PlanError, Planned, RunOptions, RunReport,
    TakeOverOffer, Verb,
};
use crate::release::{Event, EventSink, actor};
use crate::util::{format_bytes, format_duration};

pub async fn deploy(
    ctx: &Context,
    reference: &str,
    force: bool,
    canary: Option<u8>,
    args: &ActionArgs,
) -> Result<i32> {
    let reference = reference.to_string();
    let verb = if force {
        Verb::Redeploy { reference }
    } else {
        Verb::Deploy { reference }
    };
    act_with(ctx, verb, args, false, canary).await
}

/// `promote`: a deploy of the release in canary, which then takes all traffic (issue 13).
pub async fn promote_to(ctx: &Context, sha: &str, args: &ActionArgs) -> Result<i32> {
    let verb = Verb::Promote {
        reference: sha.to_string(),
    };
    act(ctx, verb, args, false).await
}

pub async fn rollback(ctx: &Context, reference: Option<&str>, args: &ActionArgs) -> Result<i32> {
    let target = reference.map_or(Target::Previous, |r| Target::Ref(r.to_string()));
    act(ctx, Verb::Rollback { target }, args, false).await
}

pub async fn prune(
    ctx: &Context,
    keep: Option<usize>,
    dry_run: bool,
    args: &ActionArgs,
) -> Result<i32> {
    let keep = match ctx.session().one_service() {
        Ok(s) => keep.unwrap_or(s.keep_images).max(1),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::USAGE);
        }
    };
    act(ctx, Verb::Prune { keep }, args, dry_run).await
}

pub async fn unlock(ctx: &Context, args: &ActionArgs, force: bool) -> Result<i32> {
    act(ctx, Verb::Unlock { force }, args, false).await
}

async fn act(ctx: &Context, verb: Verb, args: &ActionArgs, dry_run: bool) -> Result<i32> {
    act_with(ctx, verb, args, dry_run, None).await
}

/// Plan on every host, show it, ask, run, print where each host stands.
async fn act_with(
    ctx: &Context,
    verb: Verb,
    args: &ActionArgs,
    dry_run: bool,
    canary: Option<u8>,
) -> Result<i32> {
    let session = ctx.session();
    if !dry_run && let Some(why) = session.refusal() {
        eprintln!("error: refused: {why} (nothing that changes a host may run)");
        return Ok(exit::USAGE);
    }
    let request = session
        .one_service()
        .and_then(|s| session.request(s, &args.hosts, verb, &actor::current()));
    let mut request = match request {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::USAGE);
        }
    };
    request.lock_wait = args.lock_wait;
    request.health_timeout = args.timeout;
    request.take_over_stale = args.take_over_stale;
    request.watch = args.watch;
    request.canary = canary;
    let specs: Vec<HostSpec> = ctx
        .env
        .hosts
        .iter()
        .filter(|h| request.hosts.contains(&h.name))
        .cloned()
        .collect();
    // With --yes nobody looks between plan and run: plan under the lock, read the host once.
    let under_lock = args.yes && request.verb.is_release();
    let connected = if under_lock {
        runner::connect_for_lock(&specs).await
    } else {
        runner::connect(&specs).await
    };
    let planned = match connected {
        Ok(hosts) if under_lock => runner::plan_under_lock(request, hosts).await,
        Ok(hosts) => runner::plan(request, hosts).await,
        Err(e) => Err(e),
    };
    let planned = match planned {
        Ok(p) => p,
        Err(e) => {
            print_plan_error(&e);
            return Ok(e.exit_code());
        }
    };
    let question = question(&planned);
    if dry_run {
        if ctx.global.output == OutputFormat::Json {
            let plans: Vec<_> = planned
                .plans()
                .iter()
                .filter_map(|p| match p {
                    HostPlan::Prune(p) => Some(p),
                    _ => None,
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&plans)?);
        } else {
            println!("{question}\n(dry run: nothing removed)");
        }
        runner::close(planned.into_hosts()).await;
        return Ok(exit::OK);
    }
    // Nothing to remove and nothing to unlock: say so, ask nothing. (A release that is already
    // live still runs: it is recorded, and finishes an interrupted switch.)
    if planned.is_noop() && !planned.request().verb.is_release() {
        for p in planned.plans() {
            println!("{}", p.summary());
        }
        if matches!(planned.request().verb, Verb::Prune { .. }) {
            println!("nothing to prune");
        }
        runner::close(planned.into_hosts()).await;
        return Ok(exit::OK);
    }
    match confirm(&planned, args.yes, &question) {
        Ok(true) => {}
        Ok(false) => {
            eprintln!("cancelled; nothing changed");
            runner::close(planned.into_hosts()).await;
            return Ok(exit::ACTION_FAILED);
        }
        Err(code) => {
            runner::close(planned.into_hosts()).await;
            return Ok(code);
        }
    }
    if args.yes {
        eprintln!("{question}");
    }
    let release = planned.request().verb.is_release();
    let (events, printer) = spawn_printer(ctx.global.output);
    let opts = RunOptions {
        events,
        cancel: cancel_on_signals(),
        notifier: Notifier::from_env(),
        // A person who confirmed pins what they saw; --yes pins only the target (CI queued
        // with --lock-wait behind another deploy must still deploy its SHA).
        pin: if args.yes {
            PinMode::TargetOnly
        } else {
            PinMode::Confirmed
        },
        offer_take_over: (!args.yes).then(|| Arc::new(offer_take_over) as TakeOverOffer),
    };
    let report = planned.run(&opts).await;
    drop(opts);
    let _ = printer.await;
    print_report(ctx, &report, release);
    if args.timings {
        // On stderr, after everything else: the JSON events on stdout stay as they are.
        for (host, trips) in &report.trips {
            eprintln!("{host}: {trips}");
        }
    }
    Ok(report.exit_code())
}

fn print_plan_error(e: &PlanError) {
    eprintln!("error: {e}");
}

/// What the operator is asked about: every host's plan.
fn question(planned: &Planned) -> String {
    let r = planned.request();
    let n = planned.plans().len();
    let mut q = match &r.verb {
        Verb::Prune { .. } => format!("prune {} in {}:\n", r.service.name, r.env),
        Verb::Unlock { .. } => format!(
            "unlock {} in {}: removing a lock that is NOT stale lets two deploys race.\n",
            r.service.name, r.env
        ),
        v => format!(
            "{} {} in {} ({n} host{}), one host at a time:\n",
            v.as_str(),
            r.service.name,
            r.env,
            if n == 1 { "" } else { "s" }
        ),
    };
    for p in planned.plans() {
        q.push_str(&format!("  {}\n", p.summary()));
        if let HostPlan::Prune(p) = p {
            for item in &p.remove {
                q.push_str(&format!(
                    "    - {} ({}, {})\n",
                    item.tag,
                    item.created,
                    format_bytes(item.size_bytes)
                ));
            }
        }
    }
    q.trim_end().to_string()
}

/// Asks the operator, unless `--yes`, by the engine's confirmation rule.
fn confirm(planned: &Planned, yes: bool, question: &str) -> Result<bool, i32> {
    if yes {
        return Ok(true);
    }
    let equivalent = planned.request().equivalent();
    if !std::io::stdin().is_terminal() {
        eprintln!(
            "error: refusing to act without confirmation: stdin is not a terminal.\n  Fix: pass --yes (e.g. `{equivalent} --yes`)"
        );
        return Err(exit::USAGE);
    }
    let rule = planned.confirmation();
    let mut stderr = std::io::stderr();
    match &rule {
        Confirmation::Typed { .. } => {
            let _ = write!(
                stderr,
                "{question}\nEnvironment `{}` is protected: type {} to confirm: ",
                planned.request().env,
                rule.words_text()
            );
        }
        Confirmation::Plain => {
            let _ = write!(stderr, "{question}\nProceed? [y/N] ");
        }
    }
    let _ = stderr.flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    Ok(rule.accepts(&line))
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
                    ..
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

fn cancel_on_signals() -> CancellationToken {
    // Ctrl-C, SIGTERM and SIGHUP alike (the engine's handler); the terminal may be gone.
    crate::release::signals::cancel_on_signals(|sig| {
        let _ = writeln!(
            std::io::stderr(),
            "\n{sig}: aborting before the switch, and no further host starts; the live color keeps serving. (A switch already under way completes; a watch stops and switches nothing back: both colors keep running.)"
        );
    })
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

/// After a run: the error, then exactly which host runs which SHA now.
fn print_report(ctx: &Context, report: &RunReport, release: bool) {
    if let Some(why) = &report.refused {
        eprintln!("error: refused: {why}");
        return;
    }
    if let Some(e) = report.failure() {
        eprintln!("\nerror: {e}");
    }
    if report.cancelled() {
        eprintln!("\n{}", report.summary().lines().last().unwrap_or_default());
    }
    if !release {
        for h in &report.hosts {
            if let runner::HostResult::Done { summary, .. } = &h.result {
                println!("{summary}");
            }
        }
        return;
    }
    if ctx.global.output != OutputFormat::Table {
        return;
    }
    let mut t = Table::new(["HOST", "THIS RUN", "LIVE NOW"]);
    for h in &report.hosts {
        t.row([
            h.host.clone(),
            h.result_text(),
            h.serves_now
                .as_ref()
                .map_or_else(|| "unknown".to_string(), ToString::to_string),
        ]);
    }
    eprint!("\n{}", t.render(""));
}
