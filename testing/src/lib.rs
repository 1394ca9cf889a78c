//! `startLocalS3()`: a real S3 server inside the Node process, for tests.
//!
//! Why: the host's integration tests skip themselves when no S3 server runs,
//! and every other way to get one (Docker, `cargo install`, a Python server)
//! is set-up a test suite should not need. This is s3s with its file-system
//! backend (the s3s-fs server of our own test matrix, 0.14.1): strict SigV4
//! with random credentials, on 127.0.0.1 only, served by hyper on the addon's
//! tokio runtime, so there is no child process to leak.
//!
//! It is a separate addon from the storage backend: the production path never
//! loads it, and importing the backend costs nothing for it.

#![warn(missing_docs, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use napi::bindgen_prelude::{Error, Result, Status};
use napi_derive::napi;
use s3s::auth::SimpleAuth;
use s3s::host::MultiDomain;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long `stop()` lets open requests finish before it closes them.
const GRACE: Duration = Duration::from_secs(2);

/// Options of `startLocalS3()`; every field is optional.
#[napi(object)]
pub struct LocalS3Options {
    /// Keep the buckets in this directory (created if missing, kept on stop).
    /// Default: a fresh directory in memory-backed storage where the system
    /// has it (`/dev/shm` on Linux), else in the temp dir; removed on stop.
    pub dir: Option<String>,
    /// The bucket to create. Default `test-bucket`.
    pub bucket: Option<String>,
    /// Port on 127.0.0.1. Default: one the system picks.
    pub port: Option<u32>,
    /// The region clients should sign for. Default `us-east-1`.
    pub region: Option<String>,
    /// Fixed credentials instead of random ones (both or neither).
    pub access_key_id: Option<String>,
    /// Fixed credentials instead of random ones (both or neither).
    pub secret_access_key: Option<String>,
    /// Base domains for virtual-hosted-style requests, e.g. `localhost` for
    /// `http://<bucket>.localhost:<port>`; a domain without a port also
    /// matches with the server's. Path style always works.
    pub domains: Option<Vec<String>>,
}

/// A running server; `stop()` ends it.
#[napi]
pub struct LocalS3Server {
    endpoint: String,
    bucket: String,
    region: String,
    access_key_id: String,
    secret_access_key: String,
    dir: String,
    temporary: bool,
    shutdown: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
    requests: Arc<AtomicU64>,
}

#[napi]
impl LocalS3Server {
    /// `http://127.0.0.1:<port>`
    #[napi(getter)]
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The bucket created at start.
    #[napi(getter)]
    pub fn bucket(&self) -> String {
        self.bucket.clone()
    }

    /// The region to sign for.
    #[napi(getter)]
    pub fn region(&self) -> String {
        self.region.clone()
    }

    /// The access key id requests must be signed with.
    #[napi(getter)]
    pub fn access_key_id(&self) -> String {
        self.access_key_id.clone()
    }

    /// The secret key requests must be signed with.
    #[napi(getter)]
    pub fn secret_access_key(&self) -> String {
        self.secret_access_key.clone()
    }

    /// Where the objects are (a bucket is a directory in it).
    #[napi(getter)]
    pub fn dir(&self) -> String {
        self.dir.clone()
    }

    /// HTTP requests answered so far (S3 requests, refused ones and health
    /// probes alike): a test can see that traffic reached this server.
    #[napi]
    pub fn request_count(&self) -> f64 {
        self.requests.load(Ordering::Relaxed) as f64
    }

    /// Stops accepting connections, lets open requests finish (up to 2 s),
    /// and removes the directory if the server made it. Safe to call twice.
    #[napi]
    pub async fn stop(&self) -> Result<()> {
        let shutdown = self.shutdown.lock().expect("shutdown lock").take();
        let task = self.task.lock().expect("task lock").take();
        if let Some(tx) = shutdown {
            let _ = tx.send(());
        }
        if let Some(task) = task {
            let _ = task.await;
            if self.temporary {
                remove_dir(Path::new(&self.dir)).await?;
            }
        }
        Ok(())
    }
}

/// Starts a server on 127.0.0.1 with one bucket and random credentials.
#[napi]
pub async fn start_local_s3(options: Option<LocalS3Options>) -> Result<LocalS3Server> {
    let o = options.unwrap_or(LocalS3Options {
        dir: None,
        bucket: None,
        port: None,
        region: None,
        access_key_id: None,
        secret_access_key: None,
        domains: None,
    });
    let bucket = o.bucket.unwrap_or_else(|| "test-bucket".to_owned());
    check_bucket_name(&bucket)?;
    let port = match o.port {
        None => 0,
        Some(p) => u16::try_from(p).map_err(|_| invalid(format!("port must be 0–65535, got {p}")))?,
    };
    let (access_key_id, secret_access_key) = match (o.access_key_id, o.secret_access_key) {
        (Some(a), Some(s)) if !a.is_empty() && !s.is_empty() => (a, s),
        (None, None) => random_credentials(),
        _ => return Err(invalid("accessKeyId and secretAccessKey go together: give both (non-empty) or neither")),
    };
    let region = o.region.unwrap_or_else(|| "us-east-1".to_owned());

    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| Error::new(Status::GenericFailure, format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
    let port = listener.local_addr().map_err(io_error)?.port();

    let (dir, temporary) = match o.dir {
        Some(d) => (PathBuf::from(d), false),
        None => (temporary_dir().await?, true),
    };
    let requests = Arc::new(AtomicU64::new(0));
    let auth = (access_key_id.as_str(), secret_access_key.as_str());
    let started = serve(listener, &dir, &bucket, port, auth, o.domains.unwrap_or_default(), requests.clone()).await;
    let (shutdown, task) = match started {
        Ok(running) => running,
        Err(e) => {
            if temporary {
                let _ = remove_dir(&dir).await;
            }
            return Err(e);
        }
    };
    Ok(LocalS3Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        bucket,
        region,
        access_key_id,
        secret_access_key,
        dir: dir.to_string_lossy().into_owned(),
        temporary,
        shutdown: Mutex::new(Some(shutdown)),
        task: Mutex::new(Some(task)),
        requests,
    })
}

/// Creates the bucket's directory and spawns the accept loop.
async fn serve(
    listener: TcpListener,
    dir: &Path,
    bucket: &str,
    port: u16,
    (access_key_id, secret_access_key): (&str, &str),
    domains: Vec<String>,
    requests: Arc<AtomicU64>,
) -> Result<(oneshot::Sender<()>, JoinHandle<()>)> {
    tokio::fs::create_dir_all(dir.join(bucket))
        .await
        .map_err(|e| Error::new(Status::GenericFailure, format!("cannot create {}: {e}", dir.join(bucket).display())))?;
    let fs =
        s3s_fs::FileSystem::new(dir).map_err(|e| Error::new(Status::GenericFailure, format!("cannot serve {}: {e:?}", dir.display())))?;
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(access_key_id, secret_access_key.to_owned()));
    if !domains.is_empty() {
        // s3s compares the Host header, port included, with the domains.
        let with_ports =
            domains.iter().flat_map(|d| if d.contains(':') { vec![d.clone()] } else { vec![d.clone(), format!("{d}:{port}")] });
        let hosts = MultiDomain::new(with_ports).map_err(|e| invalid(format!("domain {domains:?}: {e:?}")))?;
        builder.set_host(hosts);
    }
    let service = Front { s3: builder.build(), requests, writes: Arc::default() };

    let (shutdown, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        let graceful = GracefulShutdown::new();
        loop {
            let socket = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, _)) => socket,
                    // Out of file descriptors and the like: try again shortly.
                    Err(_) => { tokio::time::sleep(Duration::from_millis(10)).await; continue; }
                },
                _ = &mut stopped => break,
            };
            // Small answers go out at once (s3s-fs's own binary waits ~40 ms
            // for delayed ACKs on multi-write responses without it).
            let _ = socket.set_nodelay(true);
            let conn = http.serve_connection(TokioIo::new(socket), service.clone());
            let conn = graceful.watch(conn.into_owned());
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
        drop(listener);
        let _ = tokio::time::timeout(GRACE, graceful.shutdown()).await;
    });
    Ok((shutdown, task))
}

/// What sits in front of the S3 service: counts requests, and answers the
/// health probes of MinIO (`/minio/health/live`, `/minio/health/ready`) that
/// suites written for MinIO wait on, so they run unchanged. Only unsigned
/// GET/HEAD requests to exactly those paths are answered here; a signed
/// request for an object in a bucket named `minio` still reaches S3.
#[derive(Clone)]
struct Front {
    s3: S3Service,
    requests: Arc<AtomicU64>,
    /// One lock per object path, held by conditional writes.
    writes: Arc<Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Front {
    /// A PutObject or CompleteMultipartUpload with `If-None-Match` or
    /// `If-Match`: s3s-fs checks the condition and then writes, without a
    /// lock, so two such writes at once could both succeed. Here they take
    /// turns per object, as on S3, where exactly one of them wins.
    fn conditional_write<B>(req: &http::Request<B>) -> Option<String> {
        let query = req.uri().query().unwrap_or("");
        let write = match *req.method() {
            http::Method::PUT => !query.contains("partNumber=") && !req.headers().contains_key("x-amz-copy-source"),
            http::Method::POST => query.contains("uploadId="),
            _ => false,
        };
        let conditional = req.headers().contains_key(http::header::IF_NONE_MATCH) || req.headers().contains_key(http::header::IF_MATCH);
        let host = req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        (write && conditional).then(|| format!("{host}{}", req.uri().path()))
    }

    fn is_health_probe<B>(req: &http::Request<B>) -> bool {
        let path = req.uri().path();
        let method = req.method();
        (method == http::Method::GET || method == http::Method::HEAD)
            && (path == "/minio/health/live" || path == "/minio/health/ready")
            && !req.headers().contains_key(http::header::AUTHORIZATION)
            && !req.uri().query().is_some_and(|q| q.contains("X-Amz-Signature"))
    }
}

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for Front {
    type Response = s3s::HttpResponse;
    type Error = s3s::HttpError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = std::result::Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, req: http::Request<hyper::body::Incoming>) -> Self::Future {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if Self::is_health_probe(&req) {
            return Box::pin(async { Ok(http::Response::new(s3s::Body::empty())) });
        }
        if let Some(object) = Self::conditional_write(&req) {
            let lock = self.writes.lock().expect("writes lock").entry(object.clone()).or_default().clone();
            let (s3, writes) = (self.s3.clone(), self.writes.clone());
            return Box::pin(async move {
                let answer = {
                    let _turn = lock.lock().await;
                    hyper::service::Service::call(&s3, req).await
                };
                // The last writer of this object removes its lock.
                let mut map = writes.lock().expect("writes lock");
                if map.get(&object).is_some_and(|l| Arc::strong_count(l) == 2) {
                    map.remove(&object);
                }
                drop(map);
                drop(lock);
                answer
            });
        }
        hyper::service::Service::call(&self.s3, req)
    }
}

/// A fresh directory in memory-backed storage where there is some.
async fn temporary_dir() -> Result<PathBuf> {
    let name = format!("storage-s3-local-{}", uuid::Uuid::new_v4().simple());
    let shm = Path::new("/dev/shm");
    if cfg!(target_os = "linux") && shm.is_dir() && tokio::fs::create_dir(shm.join(&name)).await.is_ok() {
        return Ok(shm.join(name));
    }
    let dir = std::env::temp_dir().join(name);
    tokio::fs::create_dir(&dir).await.map_err(|e| Error::new(Status::GenericFailure, format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

async fn remove_dir(dir: &Path) -> Result<()> {
    match tokio::fs::remove_dir_all(dir).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::new(Status::GenericFailure, format!("cannot remove {}: {e}", dir.display()))),
    }
}

/// An access key id like AWS's (20 upper-case characters) and a 40-character secret.
fn random_credentials() -> (String, String) {
    let id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    (format!("LOCAL{}", &id[..15]), secret[..40].to_owned())
}

/// S3's bucket naming rules, which also keep the name a plain directory name.
fn check_bucket_name(name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid = (3..=63).contains(&name.len())
        && name.chars().all(ok_char)
        && edge(name.chars().next())
        && edge(name.chars().last())
        && !name.contains("..");
    if valid {
        Ok(())
    } else {
        Err(invalid(format!(
            "bucket {name:?} is not a valid S3 bucket name (3–63 characters: lower-case letters, digits, '.' and '-', starting and ending with a letter or digit)"
        )))
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(Status::InvalidArg, message.into())
}

fn io_error(e: std::io::Error) -> Error {
    Error::new(Status::GenericFailure, e.to_string())
}
