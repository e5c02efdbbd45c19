//! A library user's own handler: `GET /hello?name=Ada` answers `Hello, Ada!`.
//!
//! ```sh
//! cargo run --release --example custom_handler     # then: curl 'localhost:8000/hello?name=Ada'
//! ```

use std::sync::Arc;

use cerberus::config::Config;
use cerberus::handler::{Handler, Request, Responder, Route};
use cerberus::Server;

/// Greets whoever `?name=` names.
struct Hello;

impl Handler for Hello {
    fn handle(&self, req: &Request<'_>, res: &mut Responder<'_>) {
        let name = req
            .head
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("name=")))
            .unwrap_or("world");
        let body = format!("Hello, {name}!\n");
        res.send(200, &[("Content-Type", b"text/plain")], body.as_bytes());
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::default();
    if let Some(listen) = std::env::args().nth(1) {
        config.listen = listen.parse()?;
    }
    Server::new(config)?
        .route(Route::exact(Some("GET"), "/hello", Arc::new(Hello)))
        .run()
}
