#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal of a given size and plays a script against it.

usage: pty-run.py ROWS COLS STEPS_JSON CMD [ARGS...]

STEPS_JSON is a list of steps, each one of
  {"expect": TEXT}                  wait (30 s) until TEXT has appeared in the output
  {"send": TEXT}                    type TEXT
  {"until": TEXT, "send": TEXT}     type TEXT every second until TEXT appears (30 s)
  {"resize": [ROWS, COLS]}          change the terminal's size (the program gets SIGWINCH)
Prints one JSON object: {"status": exit code or null, "output": everything read, "error": ...}.
"""
import fcntl, json, os, select, struct, subprocess, sys, termios, time

rows, cols, steps, cmd = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4:]
master, slave = os.openpty()


def set_size(fd, r, c):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", r, c, 0, 0))


set_size(slave, rows, cols)


def controlling_tty():
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                        preexec_fn=controlling_tty, close_fds=True)
os.close(slave)
out = b""


def pump(timeout):
    global out
    r, _, _ = select.select([master], [], [], timeout)
    if r:
        try:
            data = os.read(master, 65536)
        except OSError:
            return False
        if not data:
            return False
        out += data
    return True


def result(error=None):
    try:
        status = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        status = None
        error = error or "the program did not exit"
    while pump(0.2):
        pass
    print(json.dumps({"status": status, "output": out.decode("utf-8", "replace"), "error": error}))
    sys.exit(0)


for step in steps:
    deadline = time.time() + 30
    if "resize" in step:
        set_size(master, *step["resize"])
    elif "until" in step:
        want, seen_at, next_send = step["until"].encode(), len(out), 0
        while want not in out[seen_at:]:
            if time.time() > deadline:
                result("timed out waiting for %r" % step["until"])
            if time.time() >= next_send:
                os.write(master, step["send"].encode())
                next_send = time.time() + 1
            if not pump(0.2):
                result("the program ended before %r" % step["until"])
    elif "expect" in step:
        want = step["expect"].encode()
        while want not in out:
            if time.time() > deadline:
                result("timed out waiting for %r" % step["expect"])
            if not pump(0.2):
                result("the program ended before %r" % step["expect"])
    elif "send" in step:
        os.write(master, step["send"].encode())
result()
