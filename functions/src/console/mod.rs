//! The operator's console: server-rendered pages on the admin Function URL
//! (the same router locally), in Polish with English available, usable on a
//! phone. Sign-in: [`auth`]; what happened: [`log`]; the pages: [`pages`], [`products`], [`sync`], [`shops`].

pub mod auth;
pub mod log;
pub mod pages;
pub mod products;
pub mod shops;
pub mod sync;
