//! A misbehaving HTTP server for the tests: each request answered with whatever the test's route
//! says (HTML, truncated JSON, a huge body, a slow drip, a closed connection, a late answer).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::sandbox::Env;

/// What the hostile server answers to one request.
#[derive(Clone)]
pub(crate) enum Reply {
    /// A whole answer.
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// Headers announcing `len` bytes, then one byte every `every`.
    Drip { len: usize, every: Duration },
    /// Read the request, close the connection without a word.
    Close,
    /// Answer after `after`.
    Late(Duration, Box<Reply>),
}

pub(crate) fn json(status: u16, body: &str) -> Reply {
    Reply::Full {
        status,
        headers: vec![("content-type", "application/json".into())],
        body: body.as_bytes().to_vec(),
    }
}

pub(crate) fn html(status: u16) -> Reply {
    Reply::Full {
        status,
        headers: vec![("content-type", "text/html; charset=utf-8".into())],
        body: b"<!DOCTYPE html><html><body>Please log in to the Wi-Fi</body></html>".to_vec(),
    }
}

type Route = dyn Fn(&str, &str) -> Reply + Send + Sync;

/// A loopback HTTP/1.1 server answering each request (one per connection) with `route(method,
/// path)`, and recording `(method, path)` of each request it read.
pub(crate) struct Hostile {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Hostile {
    pub(crate) fn start(
        env: &Env,
        route: impl Fn(&str, &str) -> Reply + Send + Sync + 'static,
    ) -> Hostile {
        let route: Arc<Route> = Arc::new(route);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let listener = env
            .rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let log = seen.clone();
        env.rt.spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (route, log) = (route.clone(), log.clone());
                tokio::spawn(async move { serve_one(sock, &*route, &log).await });
            }
        });
        Hostile { addr, seen }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests other than the token check.
    pub(crate) fn requests(&self) -> Vec<(String, String)> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, p)| !(m == "GET" && p == "/core/v1/tag"))
            .cloned()
            .collect()
    }
}

async fn serve_one(
    mut sock: tokio::net::TcpStream,
    route: &Route,
    log: &Mutex<Vec<(String, String)>>,
) {
    // Read the head, then the body it announces.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let mut first = head.lines().next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let target = first.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default().to_owned();
    log.lock().unwrap().push((method.clone(), path.clone()));
    let mut reply = if method == "GET" && path == "/core/v1/tag" {
        json(200, "[]")
    } else {
        route(&method, &path)
    };
    loop {
        match reply {
            Reply::Late(after, r) => {
                tokio::time::sleep(after).await;
                reply = *r;
            }
            Reply::Close => return,
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let mut out = format!(
                    "HTTP/1.1 {status} X\r\nconnection: close\r\ncontent-length: {}\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                let _ = sock.write_all(out.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
                return;
            }
            Reply::Drip { len, every } => {
                let out = format!(
                    "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n"
                );
                let _ = sock.write_all(out.as_bytes()).await;
                for _ in 0..len {
                    tokio::time::sleep(every).await;
                    if sock.write_all(b" ").await.is_err() {
                        return;
                    }
                }
                return;
            }
        }
    }
}
