//! Running `payerr` server commands in tests: start on an ephemeral port, read the JSON log, signal,
//! stop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::{self, Reply};

/// A running `payerr` server command (serve, simulate, gateway) with its JSON log lines: started on
/// an ephemeral port, its address read from the `listening` log line.
pub struct Daemon {
    child: Child,
    /// `host:port` it listens on.
    pub addr: String,
    lines: Receiver<Value>,
    log: Arc<Mutex<Vec<Value>>>,
    reader: Option<thread::JoinHandle<()>>,
}

impl Daemon {
    /// Runs `payerr ARGS` (which must log JSON and listen on port 0) and waits for it to listen.
    pub fn start(args: &[&str], env: &[(&str, &str)], dir: &Path) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_payerr"))
            .args(args)
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("payerr {args:?} does not start: {e}"));
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = log.clone();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
                kept.lock().unwrap().push(value.clone());
                let _ = send.send(value);
            }
        });
        let mut server = Daemon {
            child,
            addr: String::new(),
            lines,
            log,
            reader: Some(reader),
        };
        let listening = server.wait_log("listening");
        server.addr = listening["addr"].as_str().unwrap().to_owned();
        server
    }

    /// Waits (at most 10 s) for the next log line with this message.
    pub fn wait_log(&self, msg: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line["msg"] == msg => return line,
                Ok(_) => {}
                Err(_) => panic!("no {msg:?} log line; log: {:?}", self.log.lock().unwrap()),
            }
        }
    }

    /// Sends a signal by name (TERM, HUP, KILL…).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// SIGTERM, then the exit status (within 10 s) and every log line.
    pub fn stop(mut self) -> (ExitStatus, Vec<Value>) {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            thread::sleep(Duration::from_millis(20));
        };
        // The log ends with the process: the reader has everything once it finishes.
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        let log = self.log.lock().unwrap().clone();
        (status, log)
    }

    /// GET on a new connection.
    pub fn get(&self, path: &str) -> Reply {
        http::get(&self.addr, path)
    }

    /// POST a JSON body on a new connection.
    pub fn post(&self, path: &str, body: &str) -> Reply {
        http::post_json(&self.addr, path, body)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `payerr simulate --dialect DIALECT` on an ephemeral port with JSON logs.
pub fn simulator(dialect: &str) -> Daemon {
    Daemon::start(
        &[
            "simulate",
            "--dialect",
            dialect,
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ],
        &[],
        &std::env::temp_dir(),
    )
}
