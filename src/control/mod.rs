//! tor's control protocol: a pure core ([`reply`], [`command`], [`auth`], [`address`]) under a
//! thin tokio shell ([`client`]), with its errors in [`error`]. Only the commands in
//! [`command::Command`] can ever be sent. Imports nothing of the crate but `small_file`.

pub mod address;
pub mod auth;
pub mod client;
pub mod command;
pub mod error;
pub mod reply;

pub use address::{ControlAddress, OnionAddress};
pub use client::{ConnectOptions, Connection};
pub use command::{Command, Keyword};
pub use error::ControlError;
pub use reply::{Limits, Message, ReplyParser};
