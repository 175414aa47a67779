"""syncstream's benchmark: ``python -m bench [--quick] [--scenario NAME ...]``.

One module, one job:

- :mod:`bench.cli` parses the command line and runs the scenarios in order, within a time budget;
- :mod:`bench.scenarios` holds one module per scenario (fanout, steady, writes, idle, catchup, ceiling,
  workers), each returning a :class:`bench.report.Result`;
- :mod:`bench.server` starts and stops a real ``syncstream serve`` (and makes the PostgreSQL database);
- :mod:`bench.setup` signs up a user and creates the organization the load goes to;
- :mod:`bench.children` runs load-generating work in child processes, each on its own uvloop loop;
- :mod:`bench.subscribers` is the SSE subscriber (raw asyncio protocol, ``bytes.find`` parsing) and the
  child process that holds thousands of them;
- :mod:`bench.writers` is the write load (a minimal HTTP/1.1 keep-alive client) and its child process;
- :mod:`bench.ceiling` is the framework-free reference server the fan-out figures are compared with;
- :mod:`bench.frames` builds SSE frames shaped like the server's;
- :mod:`bench.procstat` reads CPU and RSS from ``/proc``;
- :mod:`bench.profiling` drives py-spy and summarises its output;
- :mod:`bench.stats` and :mod:`bench.report` compute and print the figures.

Only loopback addresses are used, and every load is bounded in count and time.
"""
