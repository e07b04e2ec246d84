#![allow(dead_code)]

pub mod cpu_run;
