//! Real servers on loopback for the remote tests: tower-http's `ServeDir` (an HTTP file server
//! that honours `Range`) and s3s-fs (an S3 server over a folder, checking SigV4 signatures),
//! each under hyper on its own runtime. The HTTP server counts requests and can answer slowly;
//! dropping a server (or [`Server::stop`]) closes it, connections included.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

pub struct Server {
    pub addr: SocketAddr,
    rt: Option<tokio::runtime::Runtime>,
    /// Requests answered (HTTP server).
    pub requests: Arc<AtomicU64>,
    /// Milliseconds each answer waits first.
    pub delay_ms: Arc<AtomicU64>,
    /// Answer this many of the next requests with 503 Service Unavailable.
    pub fail_next: Arc<AtomicU64>,
}

/// Serve `service` on a fresh loopback port.
fn serve<S, B>(service: S) -> (SocketAddr, tokio::runtime::Runtime)
where
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    std_listener.set_nonblocking(true).expect("nonblocking");
    let addr = std_listener.local_addr().expect("addr");
    rt.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let service = service.clone();
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    (addr, rt)
}

impl Server {
    /// An HTTP server of the files in `root`.
    pub fn http(root: &Path) -> Self {
        use http_body_util::BodyExt;
        let requests = Arc::new(AtomicU64::new(0));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let fail_next = Arc::new(AtomicU64::new(0));
        let (r, d, f, root) = (
            requests.clone(),
            delay_ms.clone(),
            fail_next.clone(),
            PathBuf::from(root),
        );
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            r.fetch_add(1, Ordering::SeqCst);
            let delay = Duration::from_millis(d.load(Ordering::SeqCst));
            let fail = f
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            let mut dir = tower_http::services::ServeDir::new(root.clone());
            async move {
                tokio::time::sleep(delay).await;
                if fail {
                    let body = http_body_util::Empty::new()
                        .map_err(|never| match never {})
                        .boxed_unsync();
                    let mut resp = hyper::Response::new(body);
                    *resp.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                    return Ok::<_, std::convert::Infallible>(resp);
                }
                // The Service answers a missing file with 404 (`try_call` hands back the error).
                let resp = tower_service::Service::call(&mut dir, req).await?;
                Ok(resp.map(|b| b.map_err(std::io::Error::other).boxed_unsync()))
            }
        });
        let (addr, rt) = serve(service);
        Self {
            addr,
            rt: Some(rt),
            requests,
            delay_ms,
            fail_next,
        }
    }

    /// An S3 server whose buckets are the folders of `root`, accepting one key pair.
    pub fn s3(root: &Path, access_key: &str, secret_key: &str) -> Self {
        Self::s3_with(
            root,
            Some(s3s::auth::SimpleAuth::from_single(
                access_key.to_string(),
                secret_key.to_string(),
            )),
        )
    }

    /// An S3 server without authentication (a public bucket).
    pub fn s3_public(root: &Path) -> Self {
        Self::s3_with(root, None)
    }

    fn s3_with(root: &Path, auth: Option<s3s::auth::SimpleAuth>) -> Self {
        let fs = s3s_fs::FileSystem::new(root).expect("s3s-fs");
        let mut b = s3s::service::S3ServiceBuilder::new(fs);
        if let Some(auth) = auth {
            b.set_auth(auth);
        }
        let (addr, rt) = serve(b.build());
        Self {
            addr,
            rt: Some(rt),
            requests: Arc::new(AtomicU64::new(0)),
            delay_ms: Arc::new(AtomicU64::new(0)),
            fail_next: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Stop answering: the listener and every connection close.
    pub fn stop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
