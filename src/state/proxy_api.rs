//! HAProxy's runtime API, reached through the `deckhand-proxy` helper in the proxy container:
//! one `docker exec` per operation, whatever the number of commands in it.

use std::collections::BTreeMap;

use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use futures_util::StreamExt;

use super::Color;
use super::contract::{PROXY_BACKEND, PROXY_HELPER};
use crate::transport::Host;

/// Output of an exec larger than this is cut (the timing ring is 512 KiB).
const MAX_OUTPUT: usize = 4 * 1024 * 1024;

/// Wraps a command so that its exit code arrives at the end of its own output: Docker's exec
/// API otherwise needs a third request (inspect the exec) after create and start, one more
/// round trip over a slow link for every proxy operation. The proxy image has a shell.
const EXIT_WRAPPER: &str = r#""$@"; printf '\n# deckhand-exit=%s\n' "$?""#;
const EXIT_MARKER: &[u8] = b"\n# deckhand-exit=";

/// An exec created and not started yet (see [`prepare`]).
#[derive(Debug)]
pub struct Prepared {
    id: String,
}

fn wrapped<'a>(cmd: &[&'a str]) -> Vec<&'a str> {
    let mut w = vec!["sh", "-c", EXIT_WRAPPER, "deckhand-exec"];
    w.extend_from_slice(cmd);
    w
}

/// Creates the exec of `cmd` in `container` without starting it: nothing runs until
/// [`start`]. A caller that knows its next command creates it beside a step it waits for
/// anyway, and the command then costs one round trip instead of two.
pub async fn prepare(
    host: &Host,
    container: &str,
    cmd: &[&str],
) -> Result<Prepared, bollard::errors::Error> {
    let exec = host
        .docker
        .create_exec(
            container,
            ExecConfig {
                cmd: Some(wrapped(cmd).iter().map(|s| (*s).to_string()).collect()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await?;
    Ok(Prepared { id: exec.id })
}

/// Creates a read-only `cmd` in `container` for the next caller of [`exec`] with the same
/// command (`transport::SpareExecs`). Never for a command that changes anything: whoever asks
/// next runs it. A failure only means the next read creates its own.
pub async fn prepare_spare(host: &Host, container: &str, cmd: &[&str]) {
    if let Ok(p) = prepare(host, container, cmd).await {
        host.spare_execs.put(container, cmd, p.id);
    }
}

/// Runs a command inside a container; returns its exit code and combined output. A spare
/// created for the same command ([`prepare_spare`]) is started instead of a new exec.
pub async fn exec(
    host: &Host,
    container: &str,
    cmd: &[&str],
) -> Result<(i64, String), bollard::errors::Error> {
    if let Some(id) = host.spare_execs.take(container, cmd) {
        match start(host, Prepared { id }).await {
            Ok(r) => return Ok(r),
            // Its container was replaced or stopped since (Docker forgets the exec): a
            // read-only command, so it is simply run again in a new exec.
            Err(e) => {
                tracing::debug!(host = host.name(), container, error = %e, "a spare exec could not be started")
            }
        }
    }
    let p = prepare(host, container, cmd).await?;
    start(host, p).await
}

/// Starts a prepared exec; returns its exit code and combined output.
pub async fn start(host: &Host, p: Prepared) -> Result<(i64, String), bollard::errors::Error> {
    let mut bytes = Vec::new();
    let mut cut = false;
    if let StartExecResults::Attached { mut output, .. } = host
        .docker
        .start_exec(&p.id, Some(StartExecOptions::default()))
        .await?
    {
        while let Some(Ok(chunk)) = output.next().await {
            let chunk = chunk.into_bytes();
            if bytes.len() + chunk.len() <= MAX_OUTPUT {
                bytes.extend_from_slice(&chunk);
            } else {
                cut = true;
            }
        }
    }
    if !cut && let Some((code, len)) = split_exit(&bytes) {
        bytes.truncate(len);
        return Ok((code, String::from_utf8_lossy(&bytes).into_owned()));
    }
    // No marker (output cut, no shell in the image, the exec failed to start): ask Docker.
    let code = host
        .docker
        .inspect_exec(&p.id)
        .await?
        .exit_code
        .unwrap_or(-1);
    Ok((code, String::from_utf8_lossy(&bytes).into_owned()))
}

/// The exit code the wrapper printed last, and the length of the output before it.
fn split_exit(bytes: &[u8]) -> Option<(i64, usize)> {
    let at = bytes
        .windows(EXIT_MARKER.len())
        .rposition(|w| w == EXIT_MARKER)?;
    let rest = std::str::from_utf8(&bytes[at + EXIT_MARKER.len()..]).ok()?;
    let code = rest.strip_suffix('\n')?.parse::<i64>().ok()?;
    Some((code, at))
}

/// Sends `;`-separated runtime commands to the proxy's admin socket in one exec.
pub async fn cli(
    host: &Host,
    proxy: &str,
    commands: &str,
) -> Result<(i64, String), bollard::errors::Error> {
    exec(host, proxy, &[PROXY_HELPER, "cli", commands]).await
}

/// [`prepare_spare`] for the read-only runtime commands `commands` (a `show ...`).
pub async fn prepare_cli(host: &Host, proxy: &str, commands: &str) {
    prepare_spare(host, proxy, &[PROXY_HELPER, "cli", commands]).await;
}

/// One server line of `show stat` (CSV), the fields deckhand uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerStat {
    /// Requests being served (sessions on the server) and waiting in its queue.
    pub scur: u64,
    pub qcur: u64,
    /// `no check` (up, deckhand runs no HAProxy checks), `MAINT`, `MAINT (resolution)`, ...
    pub status: String,
    pub addr: String,
    pub req_tot: u64,
    pub hrsp_2xx: u64,
    pub hrsp_3xx: u64,
    pub hrsp_4xx: u64,
    pub hrsp_5xx: u64,
    /// Sessions per second over the last second.
    pub rate: u64,
    /// Averages over the last 1024 requests, in ms.
    pub rtime_ms: u64,
    pub ttime_ms: u64,
}

impl ServerStat {
    /// Whether HAProxy would send new requests to this server.
    pub fn in_rotation(&self) -> bool {
        !self.status.starts_with("MAINT") && !self.status.starts_with("DRAIN")
    }
    pub fn in_flight(&self) -> u64 {
        self.scur + self.qcur
    }
}

/// Parses `show stat` CSV output: the servers of deckhand's backend, by color. Other lines
/// (other commands' answers, other proxies) are skipped.
pub fn parse_show_stat(text: &str) -> BTreeMap<Color, ServerStat> {
    let mut out = BTreeMap::new();
    let mut header: Vec<&str> = Vec::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("# pxname,") {
            header = std::iter::once("pxname").chain(h.split(',')).collect();
            continue;
        }
        if header.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() < 2 || fields[0] != PROXY_BACKEND {
            continue;
        }
        let Some(color) = Color::parse(fields[1]) else {
            continue;
        };
        let get = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .and_then(|i| fields.get(i))
                .copied()
                .unwrap_or("")
        };
        let num = |name: &str| get(name).parse::<u64>().unwrap_or(0);
        out.insert(
            color,
            ServerStat {
                scur: num("scur"),
                qcur: num("qcur"),
                status: get("status").to_string(),
                addr: get("addr").to_string(),
                req_tot: num("req_tot"),
                hrsp_2xx: num("hrsp_2xx"),
                hrsp_3xx: num("hrsp_3xx"),
                hrsp_4xx: num("hrsp_4xx"),
                hrsp_5xx: num("hrsp_5xx"),
                rate: num("rate"),
                rtime_ms: num("rtime"),
                ttime_ms: num("ttime"),
            },
        );
    }
    out
}

/// The one color in rotation, if exactly one is.
pub fn serving_color(stats: &BTreeMap<Color, ServerStat>) -> Option<Color> {
    let live: Vec<Color> = stats
        .iter()
        .filter(|(_, s)| s.in_rotation())
        .map(|(c, _)| *c)
        .collect();
    match live.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// The runtime commands of a switch to `to`: its address (from Docker, so it is current even
/// before HAProxy's next DNS answer), in rotation, every other color out; then the stats, so
/// the caller sees the result of the same exec.
pub fn switch_commands(to: Color, to_addr: Option<&str>, port: u16) -> String {
    let mut cmds = Vec::new();
    if let Some(addr) = to_addr {
        cmds.push(format!(
            "set server {PROXY_BACKEND}/{to} addr {addr} port {port}"
        ));
    }
    cmds.push(format!("set server {PROXY_BACKEND}/{to} state ready"));
    cmds.push(format!(
        "set server {PROXY_BACKEND}/{} state maint",
        to.other()
    ));
    cmds.push(stat_command());
    cmds.join("; ")
}

/// `show stat` for deckhand's backend's servers only.
pub fn stat_command() -> String {
    format!("show stat {PROXY_BACKEND} 4 -1")
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode\n\
app,blue,0,0,1,1,,4,332,601,,0,,0,0,0,0,MAINT,1,1,0,,,1,,,1,3,1,,4,,2,0,,4,,,,0,3,0,1,2,0,,,,6,0,0,,,,,0,,,0,0,3,3003,,,,,,,,,,,,172.18.0.2:3000,,http\n\
app,green,0,0,0,0,,9,0,0,,0,,0,0,0,0,no check,1,1,0,,,1,,,1,3,2,,0,,2,7,,0,,,,0,9,0,0,0,0,,,,9,0,0,,,,,-1,,,0,0,1,2,,,,,,,,,,,,172.18.0.3:3000,,http\n\n";

    #[test]
    fn show_stat_parses_per_color() {
        let s = parse_show_stat(&format!("IP changed\n\n{STAT}"));
        let blue = &s[&Color::Blue];
        assert_eq!(blue.scur, 1);
        assert_eq!(blue.status, "MAINT");
        assert!(!blue.in_rotation());
        assert_eq!(blue.in_flight(), 1);
        assert_eq!((blue.hrsp_2xx, blue.hrsp_4xx, blue.hrsp_5xx), (3, 1, 2));
        assert_eq!(blue.req_tot, 6);
        assert_eq!(blue.ttime_ms, 3003);
        let green = &s[&Color::Green];
        assert!(green.in_rotation());
        assert_eq!(green.rate, 7);
        assert_eq!(green.addr, "172.18.0.3:3000");
        assert_eq!(serving_color(&s), Some(Color::Green));
        assert!(parse_show_stat("garbage\n,,\n").is_empty());
    }

    #[test]
    fn the_exit_code_comes_from_the_end_of_the_output() {
        assert_eq!(split_exit(b"a\nb\n\n# deckhand-exit=0\n"), Some((0, 4)));
        assert_eq!(
            split_exit(b"no newline\n# deckhand-exit=3\n"),
            Some((3, 10))
        );
        // Output that merely mentions the marker is not the marker.
        assert_eq!(split_exit(b"\n# deckhand-exit=1\nmore\n"), None);
        assert_eq!(split_exit(b"exec failed"), None);
    }

    #[test]
    fn a_switch_is_one_command_line() {
        assert_eq!(
            switch_commands(Color::Green, Some("172.18.0.3"), 3000),
            "set server app/green addr 172.18.0.3 port 3000; set server app/green state ready; set server app/blue state maint; show stat app 4 -1"
        );
    }
}
