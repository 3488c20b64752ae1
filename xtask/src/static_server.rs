//! A tiny static file server for the built book, std only.
//!
//! `cargo xtask browser` needs the book on a real `http://` origin: mdBook's
//! search loads its index with a `<script>` tag, which a `file://` page is
//! not reliably allowed to do in headless Chromium. This server answers GET
//! requests for files below one folder, on loopback, and nothing else. It is
//! a test fixture, not a web server: no keep-alive, no ranges, no caching.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};

/// How long a connection may take to send its request line. Chromium opens
/// speculative connections that never send anything; they must not pin a
/// thread forever.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest request head read; a book's URLs are far shorter.
const MAX_HEAD_BYTES: u64 = 16 * 1024;

/// A server running on a background thread until the process exits.
#[derive(Debug)]
pub struct StaticServer {
    addr: SocketAddr,
}

impl StaticServer {
    /// Serves the files below `root` on `127.0.0.1`, on a port the OS picks.
    ///
    /// # Errors
    /// Fails if `root` is not a folder or no loopback port can be bound.
    pub fn start(root: &Path) -> Result<Self> {
        // Canonical once, so every resolved file can be compared against it.
        let root = root
            .canonicalize()
            .with_context(|| format!("cannot serve {}", root.display()))?;
        let listener = TcpListener::bind(("127.0.0.1", 0)).context("cannot bind 127.0.0.1:0")?;
        let addr = listener
            .local_addr()
            .context("cannot read the bound port")?;
        thread::spawn(move || accept_forever(&listener, &root));
        Ok(Self { addr })
    }

    /// `http://127.0.0.1:<port>/` followed by `path` (no leading slash).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }
}

fn accept_forever(listener: &TcpListener, root: &Path) {
    for stream in listener.incoming().flatten() {
        let root = root.to_path_buf();
        // One thread per connection: a silent speculative connection must not
        // hold up the real request behind it.
        thread::spawn(move || {
            // A client that hangs up mid-answer is its own business.
            let _ = serve_one(stream, &root);
        });
    }
}

fn serve_one(mut stream: TcpStream, root: &Path) -> std::io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let Some((method, target)) = read_request_line(&stream)? else {
        return Ok(());
    };
    let response = if method == "GET" {
        match resolve(root, &target).and_then(|path| std::fs::read(&path).ok().map(|b| (path, b))) {
            Some((path, body)) => Response::ok(content_type(&path), body),
            None => Response::not_found(),
        }
    } else {
        Response::method_not_allowed()
    };
    response.write_to(&mut stream)
}

/// Reads the request line and skips the headers; `None` if the client sent
/// nothing usable.
fn read_request_line(stream: &TcpStream) -> std::io::Result<Option<(String, String)>> {
    let mut reader = BufReader::new(std::io::Read::take(stream, MAX_HEAD_BYTES));
    let mut first = String::new();
    if reader.read_line(&mut first)? == 0 {
        return Ok(None);
    }
    // The headers are read to the blank line so the client sees its whole
    // request consumed before the answer (some clients reset otherwise).
    let mut header = String::new();
    while reader.read_line(&mut header)? > 0 && header.trim_end() != "" {
        header.clear();
    }
    let mut parts = first.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(method), Some(target)) => Ok(Some((method.to_string(), target.to_string()))),
        _ => Ok(None),
    }
}

/// The file below `root` that the request target names, or `None` if it
/// does not exist or would lie outside `root`. `/` and folders mean their
/// `index.html`; the query and fragment are ignored.
pub fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let decoded = percent_decode(path)?;
    let relative = Path::new(decoded.trim_start_matches('/'));
    // Only plain names: `..`, a root or a drive prefix could leave the folder.
    if !relative
        .components()
        .all(|component| matches!(component, Component::Normal(_) | Component::CurDir))
    {
        return None;
    }
    let mut candidate = root.join(relative);
    if candidate.is_dir() {
        candidate.push("index.html");
    }
    // Canonicalising follows symlinks, so a link pointing out of the folder
    // is refused too.
    let canonical = candidate.canonicalize().ok()?;
    (canonical.starts_with(root) && canonical.is_file()).then_some(canonical)
}

/// Decodes `%XX` escapes; `None` for a malformed escape or non-UTF-8 result.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// The `Content-Type` for a file of the book, by extension.
pub fn content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// An HTTP/1.1 answer, always closing the connection.
struct Response {
    status: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Response {
    fn ok(content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            status: "200 OK",
            content_type,
            body,
        }
    }

    fn not_found() -> Self {
        Self {
            status: "404 Not Found",
            content_type: "text/plain; charset=utf-8",
            body: b"404 Not Found\n".to_vec(),
        }
    }

    fn method_not_allowed() -> Self {
        Self {
            status: "405 Method Not Allowed",
            content_type: "text/plain; charset=utf-8",
            body: b"405 Method Not Allowed\n".to_vec(),
        }
    }

    fn write_to(&self, stream: &mut TcpStream) -> std::io::Result<()> {
        write!(
            stream,
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.status,
            self.content_type,
            self.body.len()
        )?;
        stream.write_all(&self.body)?;
        stream.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// A folder with `index.html`, `css/book.css` and a secret next to it.
    fn site() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("site");
        std::fs::create_dir_all(root.join("css")).unwrap();
        std::fs::write(root.join("index.html"), "<h1>home</h1>").unwrap();
        std::fs::write(root.join("css/book.css"), "body{}").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "do not serve").unwrap();
        (dir, root)
    }

    /// Sends one raw request and returns the whole raw answer.
    fn request(server: &StaticServer, raw: &str) -> String {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream.write_all(raw.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    fn get(server: &StaticServer, target: &str) -> String {
        request(server, &format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n"))
    }

    #[test]
    fn serves_a_file_with_its_content_type() {
        let (_dir, root) = site();
        let server = StaticServer::start(&root).unwrap();

        let css = get(&server, "/css/book.css?v=1");
        let home = get(&server, "/");

        assert!(css.starts_with("HTTP/1.1 200 OK\r\n"), "{css}");
        assert!(css.contains("Content-Type: text/css"), "{css}");
        assert!(css.ends_with("body{}"), "{css}");
        assert!(home.contains("text/html"), "{home}");
        assert!(home.ends_with("<h1>home</h1>"), "{home}");
    }

    #[test]
    fn answers_404_for_a_missing_file() {
        let (_dir, root) = site();
        let server = StaticServer::start(&root).unwrap();

        let answer = get(&server, "/nope.html");

        assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer}");
    }

    #[test]
    fn refuses_paths_that_leave_the_folder() {
        let (_dir, root) = site();
        let server = StaticServer::start(&root).unwrap();

        for target in [
            "/../secret.txt",
            "/css/../../secret.txt",
            "/%2e%2e/secret.txt",
        ] {
            let answer = get(&server, target);
            assert!(answer.starts_with("HTTP/1.1 404"), "{target}: {answer}");
            assert!(!answer.contains("do not serve"), "{target}: {answer}");
        }
        let root = root.canonicalize().unwrap();
        assert_eq!(resolve(&root, "/../secret.txt"), None);
        assert_eq!(
            resolve(&root, "/css/book.css"),
            Some(root.join("css/book.css"))
        );
    }

    #[test]
    fn answers_only_get() {
        let (_dir, root) = site();
        let server = StaticServer::start(&root).unwrap();

        let answer = request(&server, "POST /index.html HTTP/1.1\r\nHost: x\r\n\r\n");

        assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    }

    #[test]
    fn knows_the_book_s_content_types() {
        for (name, expected) in [
            ("a.html", "text/html; charset=utf-8"),
            ("a.js", "text/javascript; charset=utf-8"),
            ("a.svg", "image/svg+xml"),
            ("a.png", "image/png"),
            ("a.woff2", "font/woff2"),
            ("a.json", "application/json"),
            ("a.bin", "application/octet-stream"),
        ] {
            assert_eq!(content_type(Path::new(name)), expected, "{name}");
        }
    }
}
