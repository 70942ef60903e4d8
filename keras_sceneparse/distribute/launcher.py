"""Start a multi-worker job on this machine: N worker processes on 127.0.0.1, output gathered."""

import os
import socket
import subprocess
import sys
import threading
import time

from keras_sceneparse.distribute.cluster import tf_config_for


def free_ports(count):
    """``count`` distinct TCP ports that are free on 127.0.0.1 right now."""
    sockets, ports = [], []
    try:
        for _ in range(count):
            handle = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            handle.bind(("127.0.0.1", 0))
            sockets.append(handle)
            ports.append(handle.getsockname()[1])
    finally:
        for handle in sockets:
            handle.close()
    return ports


def _relay(stream, prefix, sink, lock):
    for line in iter(stream.readline, ""):
        with lock:
            sink.write(f"{prefix}{line}")
            sink.flush()
    stream.close()


def start_workers(argv, num_workers, env=None, output=None):
    """Starts ``python argv...`` ``num_workers`` times, each with the ``TF_CONFIG`` of one worker
    of a cluster on free loopback ports; their output lines go to ``output`` (default: stdout)
    prefixed with ``[worker i]``. Returns the ``subprocess.Popen`` objects (worker 0 first)."""
    if num_workers < 1:
        raise ValueError(f"`num_workers` must be at least 1, got {num_workers}.")
    addresses = [f"127.0.0.1:{port}" for port in free_ports(num_workers)]
    sink = output or sys.stdout
    lock = threading.Lock()
    processes = []
    for index in range(num_workers):
        environment = {**os.environ, **(env or {}), "TF_CONFIG": tf_config_for(addresses, index)}
        process = subprocess.Popen(
            [sys.executable, *argv], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1,
        )
        thread = threading.Thread(target=_relay, args=(process.stdout, f"[worker {index}] ", sink, lock), daemon=True)
        thread.start()
        process.relay = thread
        processes.append(process)
    return processes


def wait_for_workers(processes, timeout=None):
    """Waits for every worker; returns their exit codes. Past ``timeout`` seconds the
    remaining workers are terminated (and reported with the code -15)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    codes = []
    for process in processes:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            codes.append(process.wait(timeout=remaining))
        except subprocess.TimeoutExpired:
            process.terminate()
            codes.append(process.wait())
        process.relay.join(timeout=5)
    return codes


def run_local_job(argv, num_workers, max_restarts=0, env=None, timeout=None, output=None):
    """Runs a multi-worker job on this machine and restarts the whole job (all workers) when
    one fails, up to ``max_restarts`` times: with a backup folder the job then resumes from
    its last checkpoint, as it would on a cluster whose scheduler restarts failed workers.
    Returns 0 when every worker succeeded, else the first non-zero exit code."""
    sink = output or sys.stdout
    for attempt in range(max_restarts + 1):
        codes = wait_for_workers(start_workers(argv, num_workers, env, output), timeout)
        failed = [code for code in codes if code != 0]
        if not failed:
            return 0
        sink.write(f"[launcher] workers exited with {codes}")
        if attempt < max_restarts:
            sink.write(f"; restarting all {num_workers} workers ({attempt + 1}/{max_restarts})\n")
        else:
            sink.write("\n")
        sink.flush()
    return failed[0]
