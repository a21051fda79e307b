//! tor's control protocol: a pure core ([`reply`], [`command`], [`auth`]) under a thin tokio
//! shell ([`client`]). Only the commands in [`command::Command`] can ever be sent.

pub mod auth;
pub mod client;
pub mod command;
pub mod reply;

pub use client::{ConnectOptions, Connection, ControlError};
pub use command::{Command, Keyword, OnionAddress};
pub use reply::{Limits, Message, ReplyParser};
