//! How wide the terminal on stdout is: aws fits its tables to it.

/// Columns of the terminal on stdout; 80 when stdout is no terminal (as
/// aws assumes).
pub fn width() -> usize {
    let mut ws = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we own; on a
    // descriptor that is no terminal it fails and writes nothing.
    let r = unsafe { nix::libc::ioctl(1, nix::libc::TIOCGWINSZ, &mut ws) };
    if r == 0 && ws.ws_col > 0 {
        usize::from(ws.ws_col)
    } else {
        80
    }
}
