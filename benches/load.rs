//! The load client of benches/run, and our server for the close-notify measure. The same client
//! drives our server and Go's, so the figures compare (benches/README.md).
//!
//! ```text
//! load serve ADDR        our server: /cn/{id}?port=P as below, everything else hijack's demo
//!                        handler (/echo, /): what `hijack serve` serves
//! load echo ADDR C MS    C clients for MS ms: connect, upgrade to /echo, echo 1 byte, close;
//!                        prints "echo C CONNECTIONS_PER_SECOND ERRORS CONNECTIONS"
//! load cn ADDRS N        N connections per server, one after another and interleaved across
//!                        the comma-separated servers: GET /cn/{i}?port=P, wait for the
//!                        response head (the handler runs), close, and time until the server's
//!                        UDP datagram "{i}" arrives; prints "cn ADDR N P50_US P99_US LOST"
//!                        per server
//! ```
//!
//! `/cn/{id}?port=P`: the handler flushes a 200 head, waits for close-notify, then sends "{id}"
//! in one UDP datagram to 127.0.0.1:P. Both servers do exactly this (benches/go/main.go), so the
//! figure is the client's close to the handler noticing, plus one loopback datagram, timed on
//! the client's monotonic clock with microsecond resolution.
//! (`cargo bench` runs this with no arguments: it prints its usage and exits.)

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hijack::tcp::TcpConn;
use hijack::{Fired, Handler, Request, ResponseWriter, Server, ServerConfig};
use hijack_conform::demo::Demo;
use http::StatusCode;

const USAGE: &str = "usage: load serve ADDR | load echo ADDR CLIENTS MS | load cn ADDRS N";
const ECHO_REQUEST: &[u8] =
    b"GET /echo HTTP/1.1\r\nHost: bench\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n";

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    let num = |i: usize| arg(i).parse::<u64>().unwrap_or_else(|_| panic!("{USAGE}"));
    match arg(0) {
        "serve" => serve(arg(1)),
        "echo" => echo(arg(1), num(2), num(3)),
        "cn" => close_notify(arg(1), num(2)),
        _ => eprintln!("{USAGE}"),
    }
}

/// Reads until the end of a response head; false if the stream ended or failed first.
fn read_head(stream: &mut TcpStream) -> bool {
    let mut got = [0u8; 1024];
    let mut len = 0;
    loop {
        match stream.read(&mut got[len..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => len += n,
        }
        if got[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            return true;
        }
        if len == got.len() {
            return false;
        }
    }
}

/// Connects to `addr` from source address `127.1.x.y` number `k % 1000` when `addr` is an
/// IPv4 loopback address, the port chosen at connect time (`IP_BIND_ADDRESS_NO_PORT`).
///
/// From one source address, every closed connection holds its port for TIME_WAIT's 60 s, and
/// at 15,000 connections per second the 28,232 ephemeral ports are all held: `connect` then
/// searches the port range for one it may reuse, a cost that grows with the rate, so a faster
/// server made the client slower (perf: `__inet_hash_connect` and `__inet_check_established`
/// 9% of the client's samples against our server, 1% against Go's). Spread over 1,000 source
/// addresses, each sees 15 connections per second and finds a free port at once. The server
/// sees the same bytes either way.
fn connect(addr: &str, k: u64) -> std::io::Result<TcpStream> {
    use nix::sys::socket::{self as sock, AddressFamily, SockFlag, SockType, SockaddrIn};
    use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
    use std::os::fd::AsRawFd;
    let dst = match addr.parse::<SocketAddr>() {
        Ok(SocketAddr::V4(dst)) if dst.ip().is_loopback() => dst,
        _ => return TcpStream::connect(addr),
    };
    let n = k % 1000;
    let src = SocketAddrV4::new(
        Ipv4Addr::new(127, 1, (n / 250) as u8, (n % 250 + 1) as u8),
        0,
    );
    let fd = sock::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let bound = sock::setsockopt(&fd, sock::sockopt::IpBindAddressNoPort, &true)
        .and_then(|()| sock::bind(fd.as_raw_fd(), &SockaddrIn::from(src)));
    if bound.is_err() {
        // A system without the option or those addresses: the plain way.
        return TcpStream::connect(addr);
    }
    sock::connect(fd.as_raw_fd(), &SockaddrIn::from(dst))?;
    Ok(TcpStream::from(fd))
}

/// One hijack round trip: connect, upgrade, echo one byte, close.
fn echo_once(addr: &str, k: u64) -> bool {
    let Ok(mut s) = connect(addr, k) else {
        return false;
    };
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(ECHO_REQUEST).is_err() || !read_head(&mut s) {
        return false;
    }
    let mut byte = [0u8; 1];
    s.write_all(b"x").is_ok() && s.read_exact(&mut byte).is_ok() && byte[0] == b'x'
}

fn echo(addr: &str, clients: u64, ms: u64) {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_millis(ms);
    let threads: Vec<_> = (0..clients)
        .map(|t| {
            let (addr, done, errors) = (addr.to_string(), done.clone(), errors.clone());
            std::thread::spawn(move || {
                let mut k = t;
                while Instant::now() < deadline {
                    k += clients;
                    if echo_once(&addr, k) {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let secs = started.elapsed().as_secs_f64();
    let done = done.load(Ordering::Relaxed);
    println!(
        "echo {clients} {:.0} {} {done}",
        done as f64 / secs,
        errors.load(Ordering::Relaxed)
    );
}

/// One close-notify measurement: `Ok(µs)`, or `Err(())` if the connection failed or the
/// datagram never came.
fn close_notify_once(addr: &str, udp: &UdpSocket, port: u16, i: u64) -> Result<f64, ()> {
    let mut s = TcpStream::connect(addr).map_err(drop)?;
    let request = format!("GET /cn/{i}?port={port} HTTP/1.1\r\nHost: bench\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() || !read_head(&mut s) {
        return Err(());
    }
    let closed = Instant::now();
    drop(s);
    let id = i.to_string();
    let mut buf = [0u8; 64];
    loop {
        match udp.recv(&mut buf) {
            Ok(k) if buf[..k] == *id.as_bytes() => return Ok(closed.elapsed().as_secs_f64() * 1e6),
            Ok(_) => {} // a late datagram of an earlier connection
            Err(_) => return Err(()),
        }
    }
}

/// `addrs`: one or more servers, comma-separated. Their connections interleave, so a busy
/// moment of the machine falls on all of them alike.
fn close_notify(addrs: &str, n: u64) {
    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let port = udp.local_addr().expect("udp addr").port();
    let _ = udp.set_read_timeout(Some(Duration::from_secs(2)));
    let addrs: Vec<&str> = addrs.split(',').collect();
    let mut micros = vec![Vec::with_capacity(n as usize); addrs.len()];
    let mut lost = vec![0u64; addrs.len()];
    let mut id = 0;
    for i in 0..n as usize {
        for k in 0..addrs.len() {
            let which = (i + k) % addrs.len();
            id += 1;
            match close_notify_once(addrs[which], &udp, port, id) {
                Ok(us) => micros[which].push(us),
                Err(()) => lost[which] += 1,
            }
        }
    }
    for (which, addr) in addrs.iter().enumerate() {
        let m = &mut micros[which];
        m.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            m.get(((m.len() as f64 * p).ceil() as usize).saturating_sub(1))
                .copied()
                .unwrap_or(f64::NAN)
        };
        println!(
            "cn {addr} {n} {:.1} {:.1} {}",
            pct(0.50),
            pct(0.99),
            lost[which]
        );
    }
}

/// Our server: the demo handler, plus `/cn/{id}`.
struct BenchServer {
    demo: Demo,
    udp: UdpSocket,
}

impl Handler<TcpConn> for BenchServer {
    fn serve(&self, req: Request<'_>, mut w: ResponseWriter<'_, TcpConn>) {
        let Some(id) = req.path().strip_prefix("/cn/") else {
            return self.demo.serve(req, w);
        };
        let port = req
            .target()
            .split_once("?port=")
            .and_then(|(_, p)| p.parse::<u16>().ok());
        let Some(port) = port else {
            return w.write_header(StatusCode::BAD_REQUEST);
        };
        let id = id.to_string();
        w.write_header(StatusCode::OK);
        if w.flush().is_err() {
            return;
        }
        if w.close_notify().wait_timeout(Duration::from_secs(5)) == Some(Fired::ClientGone) {
            let _ = self.udp.send_to(id.as_bytes(), ("127.0.0.1", port));
        }
    }
}

fn serve(addr: &str) {
    let handler = BenchServer {
        demo: Demo::default(),
        udp: UdpSocket::bind("127.0.0.1:0").expect("udp"),
    };
    let server = Server::bind(addr, ServerConfig::default(), handler).expect("bind");
    println!("listening on http://{}", server.local_addr());
    loop {
        std::thread::park();
    }
}
