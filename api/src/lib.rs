#![doc = include_str!("../README.md")]

pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod demo;
pub mod downloads;
pub mod exports;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod qr_expiry;
pub mod qr_image;
pub mod receipt_page;
pub mod screens;
pub mod telemetry;
pub mod webhooks;
