//! Answering one complete request: the checks that need the whole head (Host, Expect), JSON
//! validation, routing, the handler, and counting the result.

use crate::config::JsonMode;
use crate::handler::{Request, Responder, Routed};
use crate::http::response::{self, ConnectionHeader};
use crate::http::{Expect, Head, Version};
use crate::worker::Ctx;

/// Route and answer a complete request; returns whether the connection stays open.
pub fn dispatch(head: &Head<'_>, body: &[u8], ctx: &mut Ctx) -> bool {
    let method = head.method_bytes();
    let head_only = method == b"HEAD";
    let keep = head.keep_alive() && !ctx.draining;
    let conn = match (keep, head.version()) {
        (false, _) => ConnectionHeader::Close,
        (true, Version::Http10) => ConnectionHeader::KeepAlive,
        (true, Version::Http11) => ConnectionHeader::None,
    };
    let status = if head.version() == Version::Http11 && head.host_count() != 1 {
        Some(400)
    } else if head.expect() == Expect::Other {
        Some(417)
    } else {
        None
    };
    if let Some(status) = status {
        response::write_error(
            &mut ctx.wbuf,
            status,
            ctx.date.get(),
            ConnectionHeader::Close,
            head_only,
        );
        ctx.stats.request(method, status);
        return false;
    }
    let shared = &ctx.shared;
    let req = Request { head, body };
    if shared.config.json == JsonMode::Validate && req.is_json() {
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            ctx.stats.json_rejected.inc();
            let doc =
                serde_json::json!({"error": e.to_string(), "line": e.line(), "column": e.column()});
            let text = doc.to_string();
            let mut res =
                Responder::new(&mut ctx.wbuf, &ctx.date, &mut ctx.rendered, conn, head_only);
            res.send(
                400,
                &[("Content-Type", b"application/json")],
                text.as_bytes(),
            );
            ctx.stats.request(method, 400);
            return keep;
        }
        ctx.stats.json_parsed.inc();
    }
    let mut res = Responder::new(&mut ctx.wbuf, &ctx.date, &mut ctx.rendered, conn, head_only);
    match shared.router.route(method, head.path_bytes()) {
        Routed::Handler(handler) => handler.handle(&req, &mut res),
        Routed::MethodNotAllowed(allow) => {
            let reason = b"Method Not Allowed\n";
            res.send(
                405,
                &[("Allow", allow.as_bytes()), ("Content-Type", b"text/plain")],
                reason,
            );
        }
    }
    let status = match res.status() {
        Some(status) => status,
        None => {
            response::write_error(&mut ctx.wbuf, 500, ctx.date.get(), conn, head_only);
            500
        }
    };
    ctx.stats.request(method, status);
    keep
}
