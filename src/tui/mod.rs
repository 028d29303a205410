//! The console: one event loop over the terminal, a tick and background channels; the UI task
//! owns all state (`app`), background tasks (`tasks`) send snapshots and events, views (`ui`)
//! are pure functions of the state.

pub mod action;
pub mod app;
pub mod keymap;
pub mod model;
pub mod tasks;
pub mod theme;
pub mod ui;
pub mod watch;

pub use tasks::redact_value;

use std::collections::HashMap;
use std::io::{self, Stdout};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr};
use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use crossterm::{cursor, execute, terminal};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Service};
use crate::monitor::notify::Notifier;
use crate::release::EventSink;
use crate::release::runner::{PlanError, Planned, RunReport};
use crate::session::Session;
use crate::transport::Host;
use app::{App, Effect, EnvInfo, Msg};
use tasks::Bg;

type Term = Terminal<CrosstermBackend<Stdout>>;

/// How long quitting waits for a running action to stop and release its lock.
const QUIT_WAIT: Duration = Duration::from_secs(120);

/// Opens the console on the session's environment. Returns the exit code.
pub async fn run(session: Session) -> Result<i32> {
    let envs: Vec<EnvInfo> = session.config.envs.values().map(EnvInfo::from).collect();
    let mut app = App::new(
        envs,
        &session.env.name,
        session.services.clone(),
        session.read_only,
    );
    app.set_theme(theme::Theme::from_env());
    app.set_actor(&crate::release::actor::current());
    // SIGTERM and SIGHUP (a closed terminal window, a supervisor) and a SIGINT from outside:
    // leave the console, put the terminal back, and abort a running action before its switch
    // (`shutdown` waits for it to release its lock). Installed before the terminal is taken.
    let signalled = Arc::new(std::sync::Mutex::new(None::<&'static str>));
    let seen = signalled.clone();
    let signals = crate::release::signals::cancel_on_signals(move |sig| {
        tracing::warn!(signal = sig, "leaving the console");
        if let Ok(mut s) = seen.lock() {
            s.get_or_insert(sig);
        }
    });
    let mut term = enter().wrap_err("cannot set up the terminal")?;
    let mut rt = Runtime::new(session.config, session.services, app, signals);
    let result = rt.run(&mut term).await;
    drop(term);
    restore();
    let sig = signalled.lock().ok().and_then(|s| *s);
    if let Some(sig) = sig {
        eprintln!("deckhand: {sig}: left the console; a running action aborts before its switch");
    }
    rt.shutdown().await;
    result.map(|()| match sig {
        Some(_) => crate::exit::ACTION_FAILED,
        None => crate::exit::OK,
    })
}

/// Puts the terminal back: raw mode off, main screen, cursor shown. Safe to call twice.
pub fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
}

static PANIC_HOOK: Once = Once::new();

fn enter() -> io::Result<Term> {
    // A panic anywhere restores the terminal before the report is printed.
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
    terminal::enable_raw_mode()?;
    if let Err(e) = execute!(io::stdout(), terminal::EnterAlternateScreen, cursor::Hide) {
        restore();
        return Err(e);
    }
    match Terminal::new(CrosstermBackend::new(io::stdout())) {
        Ok(t) => Ok(t),
        Err(e) => {
            restore();
            Err(e)
        }
    }
}

struct Runtime {
    config: Config,
    services: Vec<Service>,
    app: App,
    bg_tx: mpsc::UnboundedSender<Bg>,
    bg_rx: mpsc::UnboundedReceiver<Bg>,
    log_tx: mpsc::Sender<Msg>,
    log_rx: mpsc::Receiver<Msg>,
    /// Connected hosts of the current environment, from the pollers (reused by actions).
    hosts: HashMap<String, Arc<Host>>,
    pollers: CancellationToken,
    refresh: Arc<Notify>,
    actions: HashMap<u64, (CancellationToken, JoinHandle<()>)>,
    /// The plan the open dialog shows, by dialog id: what runs when it is confirmed.
    planned: HashMap<u64, Planned>,
    notifier: Notifier,
    logs: Option<CancellationToken>,
    /// Cancelled by SIGTERM, SIGHUP or SIGINT; every action's token is its child.
    signals: CancellationToken,
}

impl Runtime {
    fn new(config: Config, services: Vec<Service>, app: App, signals: CancellationToken) -> Self {
        let (bg_tx, bg_rx) = mpsc::unbounded_channel();
        let (log_tx, log_rx) = mpsc::channel(16);
        Self {
            config,
            services,
            app,
            bg_tx,
            bg_rx,
            log_tx,
            log_rx,
            hosts: HashMap::new(),
            pollers: CancellationToken::new(),
            refresh: Arc::new(Notify::new()),
            actions: HashMap::new(),
            planned: HashMap::new(),
            notifier: Notifier::from_env(),
            logs: None,
            signals,
        }
    }

    async fn run(&mut self, term: &mut Term) -> Result<()> {
        let env = self.app.env().to_string();
        let epoch = self.app.epoch();
        self.start_pollers(&env, epoch);
        let mut events = Some(EventStream::new());
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let signals = self.signals.clone();
        loop {
            self.app
                .set_clock(Instant::now(), chrono::Utc::now().timestamp());
            term.draw(|f| ui::draw(f, &self.app))?;
            let effects = tokio::select! {
                ev = next_event(&mut events) => match ev {
                    Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => self.app.on_key(k),
                    Some(Ok(TermEvent::Resize(..))) => {
                        term.autoresize()?;
                        Vec::new()
                    }
                    Some(Ok(_)) => Vec::new(),
                    Some(Err(e)) => return Err(e).wrap_err("reading the terminal"),
                    // The terminal went away: leave as if asked to quit.
                    None => vec![Effect::Quit],
                },
                _ = tick.tick() => Vec::new(),
                () = signals.cancelled() => vec![Effect::Quit],
                Some(bg) = self.bg_rx.recv() => {
                    let mut effects = self.on_bg(bg);
                    // Take everything already waiting, then draw once.
                    for _ in 0..256 {
                        match self.bg_rx.try_recv() {
                            Ok(more) => effects.extend(self.on_bg(more)),
                            Err(_) => break,
                        }
                    }
                    effects
                }
                Some(m) = self.log_rx.recv() => {
                    let mut effects = self.app.on_msg(m);
                    for _ in 0..16 {
                        match self.log_rx.try_recv() {
                            Ok(more) => effects.extend(self.app.on_msg(more)),
                            Err(_) => break,
                        }
                    }
                    effects
                }
            };
            for e in effects {
                if e == Effect::Quit {
                    return Ok(());
                }
                self.effect(e, term, &mut events).await?;
            }
            if self.app.quitting() {
                return Ok(());
            }
        }
    }

    fn on_bg(&mut self, bg: Bg) -> Vec<Effect> {
        match bg {
            Bg::Connected { epoch, host } => {
                if epoch == self.app.epoch() {
                    self.hosts.insert(host.name().to_string(), host);
                }
                Vec::new()
            }
            Bg::Planned { id, result } => {
                let result = match result {
                    Ok(planned) => {
                        let plans = planned.plans().to_vec();
                        // One dialog at a time: an older plan will never be confirmed.
                        self.planned.clear();
                        self.planned.insert(id, *planned);
                        Ok(plans)
                    }
                    Err(e) => Err(Arc::new(e)),
                };
                self.app.on_msg(Msg::Plan { id, result })
            }
            Bg::Msg(m) => {
                if let Msg::ActionDone { id, .. } = &m {
                    self.actions.remove(id);
                    // Show what the action changed without waiting for the next poll.
                    self.refresh.notify_waiters();
                }
                self.app.on_msg(m)
            }
        }
    }

    fn start_pollers(&mut self, env: &str, epoch: u64) {
        self.pollers.cancel();
        self.pollers = CancellationToken::new();
        self.hosts.clear();
        let Ok(e) = self.config.env(env) else { return };
        for spec in &e.hosts {
            tokio::spawn(tasks::poll_host(
                spec.clone(),
                self.services.clone(),
                e.alerts.clone(),
                epoch,
                self.bg_tx.clone(),
                self.pollers.clone(),
                self.refresh.clone(),
            ));
        }
    }

    /// The connected hosts an action names, or why not all are available.
    fn hosts_for(&self, names: &[String]) -> Result<Vec<Arc<Host>>, PlanError> {
        names
            .iter()
            .map(|n| {
                self.hosts.get(n).cloned().ok_or_else(|| {
                    let why = self
                        .app
                        .hosts()
                        .iter()
                        .find(|h| &h.name == n)
                        .and_then(|h| h.down_reason().map(ToString::to_string))
                        .unwrap_or_else(|| "not connected yet".into());
                    PlanError::NotConnected {
                        host: n.clone(),
                        why,
                    }
                })
            })
            .collect()
    }

    async fn effect(
        &mut self,
        e: Effect,
        term: &mut Term,
        events: &mut Option<EventStream>,
    ) -> Result<()> {
        match e {
            Effect::Quit => {}
            Effect::SwitchEnv { env, epoch } => self.start_pollers(&env, epoch),
            Effect::Plan { id, request } => {
                let tx = self.bg_tx.clone();
                let hosts = self.hosts_for(&request.hosts);
                tokio::spawn(async move {
                    let result = tasks::plan(request, hosts).await.map(Box::new);
                    let _ = tx.send(Bg::Planned { id, result });
                });
            }
            Effect::Execute { id, request } => {
                let tx = self.bg_tx.clone();
                let token = self.signals.child_token();
                let cancel = token.clone();
                let planned = self.planned.remove(&id);
                let notifier = self.notifier.clone();
                let handle = tokio::spawn(async move {
                    let (etx, mut erx) = mpsc::unbounded_channel();
                    let forward_tx = tx.clone();
                    let forward = tokio::spawn(async move {
                        while let Some(event) = erx.recv().await {
                            let _ = forward_tx.send(Bg::Msg(Msg::Action { id, event }));
                        }
                    });
                    let report = match planned {
                        Some(p) => tasks::execute(p, cancel, EventSink::new(etx), notifier).await,
                        None => {
                            drop(etx);
                            RunReport {
                                trips: Vec::new(),
                                title: request.title(),
                                equivalent: request.equivalent(),
                                refused: Some("the confirmed plan is gone; plan again".into()),
                                hosts: Vec::new(),
                            }
                        }
                    };
                    // Every event is delivered before the outcome.
                    let _ = forward.await;
                    let _ = tx.send(Bg::Msg(Msg::ActionDone {
                        id,
                        report: Arc::new(report),
                    }));
                });
                self.actions.insert(id, (token, handle));
            }
            Effect::Abort { id } => {
                if let Some((token, _)) = self.actions.get(&id) {
                    token.cancel();
                }
            }
            Effect::Logs {
                id,
                host,
                container,
            } => {
                self.stop_logs();
                match self.hosts.get(&host).cloned() {
                    Some(h) => {
                        let token = CancellationToken::new();
                        tokio::spawn(tasks::stream_logs(
                            h,
                            container,
                            id,
                            self.log_tx.clone(),
                            token.clone(),
                        ));
                        self.logs = Some(token);
                    }
                    None => {
                        self.app.on_msg(Msg::LogsEnded {
                            id,
                            reason: format!("{host} is not connected"),
                        });
                    }
                }
            }
            Effect::StopLogs => self.stop_logs(),
            Effect::Inspect {
                id,
                host,
                container,
            } => {
                let tx = self.bg_tx.clone();
                let h = self.hosts.get(&host).cloned();
                tokio::spawn(async move {
                    let result = match h {
                        Some(h) => tasks::inspect(h, container).await.map_err(Arc::new),
                        None => Err(Arc::new(model::InspectError::NotConnected { host })),
                    };
                    let _ = tx.send(Bg::Msg(Msg::Inspect { id, result }));
                });
            }
            Effect::RegistryTags { service } => {
                let tx = self.bg_tx.clone();
                let image = self
                    .services
                    .iter()
                    .find(|s| s.name == service)
                    .map(|s| s.image.clone());
                tokio::spawn(async move {
                    let result = match image {
                        Some(i) => crate::release::registry::list_tags(&i)
                            .await
                            .map_err(Arc::new),
                        None => return,
                    };
                    let _ = tx.send(Bg::Msg(Msg::RegistryTags { service, result }));
                });
            }
            Effect::Shell { host, container } => {
                let note = self.shell(&host, &container, term, events).await?;
                self.app.on_msg(Msg::Note(note));
            }
        }
        Ok(())
    }

    fn stop_logs(&mut self) {
        if let Some(t) = self.logs.take() {
            t.cancel();
        }
    }

    /// Hands the terminal to `docker exec -it … sh` on the host, through the host's existing
    /// SSH master (its control socket: no new login, the same host key check) and the host's
    /// configured Docker socket; then takes the terminal back. The event stream is dropped
    /// meanwhile so the console reads no keys of the shell.
    async fn shell(
        &mut self,
        host: &str,
        container: &str,
        term: &mut Term,
        events: &mut Option<EventStream>,
    ) -> Result<String> {
        let Some(h) = self.hosts.get(host).cloned() else {
            return Ok(format!(
                "{host} is not connected; the shell needs its connection"
            ));
        };
        if let Err(e) = h.check_alive().await {
            return Ok(format!("no shell: {e}"));
        }
        let mut argv = tasks::shell_argv(&h.spec, h.control_socket(), container);
        let mut hint = None;
        if crate::swarm::is_swarm(&h) {
            // A Swarm color is a service: exec into its task on the manager's node if one runs
            // there, else a shell on the manager with DOCKER_HOST set.
            argv = match crate::swarm::shell::target(&h, container).await {
                crate::swarm::shell::ShellTarget::Task(id) => {
                    tasks::shell_argv(&h.spec, h.control_socket(), &id)
                }
                crate::swarm::shell::ShellTarget::Manager => {
                    hint = Some(format!(
                        "no task of {container} runs on the manager's node (Docker execs only there): a shell on the manager, DOCKER_HOST set; `docker service ps {container}` lists its tasks"
                    ));
                    tasks::host_shell_argv(&h.spec, h.control_socket())
                }
            };
        }
        *events = None;
        restore();
        if let Some(hint) = hint {
            println!("[deckhand] {hint}");
        }
        println!("[deckhand] {} (exit the shell to return)", argv.join(" "));
        let status = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .status()
            .await;
        let note = match &status {
            Ok(s) if s.success() => format!("shell in {container} on {host} closed"),
            Ok(s) => format!("shell in {container} on {host} ended: {s}"),
            Err(e) => format!("cannot run {}: {e}", argv[0]),
        };
        if !matches!(&status, Ok(s) if s.success()) {
            println!("[deckhand] {note}. Press Enter to return to the console.");
            let _ = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                let _ = io::stdin().read_line(&mut line);
            })
            .await;
        }
        terminal::enable_raw_mode()?;
        execute!(
            io::stdout(),
            terminal::EnterAlternateScreen,
            terminal::Clear(terminal::ClearType::All),
            cursor::Hide
        )?;
        // A fresh terminal draws everything next time. (`Terminal::clear` asks the terminal for
        // the cursor position, and the answer does not come back right after a shell.)
        *term = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        *events = Some(EventStream::new());
        Ok(note)
    }

    /// After the terminal is restored: stop pollers and wait for actions to finish aborting,
    /// so no lock is left behind.
    async fn shutdown(&mut self) {
        self.pollers.cancel();
        self.stop_logs();
        if self.actions.is_empty() {
            return;
        }
        eprintln!("deckhand: waiting for the running action to stop and release its lock …");
        for (_, (token, handle)) in self.actions.drain() {
            token.cancel();
            if tokio::time::timeout(QUIT_WAIT, handle).await.is_err() {
                eprintln!(
                    "deckhand: the action did not stop in time; `deckhand lock` shows its lock"
                );
            }
        }
    }
}

async fn next_event(events: &mut Option<EventStream>) -> Option<io::Result<TermEvent>> {
    match events {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}
