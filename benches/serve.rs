//! A delaying HTTP file server for the remote benchmark: tower-http's `ServeDir` (honours
//! `Range`) under hyper on loopback, every answer held back `--delay-ms` (a far-away object
//! store, for Tessera and for GDAL's /vsicurl/ alike). It prints its port, and after every
//! answer writes `REQUESTS BYTES` to `--stats FILE` (bytes: the Content-Length of GET answers;
//! a client that closes a connection early received less). `SERVE_LOG=1` logs each request.
//!
//!     cargo run --release --example serve -- DIR [--delay-ms 50] [--stats FILE]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut delay_ms = 50u64;
    let mut stats: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--delay-ms" => delay_ms = args.next().and_then(|v| v.parse().ok()).unwrap_or(50),
            "--stats" => stats = args.next().map(PathBuf::from),
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: serve DIR [--delay-ms N] [--stats FILE]");
        std::process::exit(2);
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("serve: {e}");
            std::process::exit(1);
        }
    };
    let requests = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("serve: {e}");
                std::process::exit(1);
            }
        };
        if let Ok(a) = listener.local_addr() {
            println!("{}", a.port());
        }
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let (dir, requests, bytes, stats) =
                (dir.clone(), requests.clone(), bytes.clone(), stats.clone());
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let mut serve = tower_http::services::ServeDir::new(dir.clone());
                let (requests, bytes, stats) = (requests.clone(), bytes.clone(), stats.clone());
                let range = req
                    .headers()
                    .get(hyper::header::RANGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_string();
                // A HEAD answer carries the object's length but sends no body.
                let head = req.method() == hyper::Method::HEAD;
                if std::env::var_os("SERVE_LOG").is_some() {
                    eprintln!(
                        "{:?} GET {} {range}",
                        std::time::SystemTime::now(),
                        req.uri()
                    );
                }
                async move {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    let r = tower_service::Service::call(&mut serve, req).await;
                    if let Ok(resp) = &r {
                        let n = resp
                            .headers()
                            .get(hyper::header::CONTENT_LENGTH)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<u64>().ok())
                            .filter(|_| !head)
                            .unwrap_or(0);
                        let q = requests.fetch_add(1, Ordering::SeqCst) + 1;
                        let b = bytes.fetch_add(n, Ordering::SeqCst) + n;
                        if let Some(f) = &stats {
                            let _ = std::fs::write(f, format!("{q} {b}\n"));
                        }
                    }
                    r
                }
            });
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
}
