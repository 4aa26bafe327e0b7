"""gunicorn's settings for Threshold: `.venv/bin/gunicorn --config deploy/gunicorn.conf.py wsgi:app`.

Read by gunicorn's master process from the same environment as the app (the systemd unit's
EnvironmentFile); every value below can be changed there without editing this file.
"""
import multiprocessing
import os

#: Where nginx reaches the app (deploy/nginx-threshold.conf's upstream); loopback only.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
#: Sync workers, gunicorn's rule of thumb for an app that waits on its database and Stripe: 2 per core + 1.
workers = int(os.environ.get("GUNICORN_WORKERS") or 2 * multiprocessing.cpu_count() + 1)
worker_class = "sync"
#: A worker silent this long is killed and replaced. A pledge waits on Stripe (STRIPE_TIMEOUT_SECONDS,
#: 30 s by default), so this stays above it; nginx's proxy_read_timeout stays above this.
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 60)
#: On SIGTERM (systemctl stop, restart), requests under way get this long to finish.
graceful_timeout = 30
#: nginx keeps connections to the upstream open (its `keepalive`).
keepalive = 5
#: Workers are replaced now and then, so that a slow leak never grows.
max_requests = 2000
max_requests_jitter = 200
#: The heartbeat file in memory: a slow disk must not get healthy workers killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

#: gunicorn believes X-Forwarded-Proto only from these addresses: none unless the app trusts proxies
#: too (TRUSTED_PROXIES, whose count the app's ProxyFix uses); then nginx on this machine, or the
#: proxies' addresses given in GUNICORN_FORWARDED_ALLOW_IPS.
forwarded_allow_ips = (
    (os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS") or "127.0.0.1,::1") if int(os.environ.get("TRUSTED_PROXIES") or 0) else ""
)

#: The app writes one line per request itself (method, path, status, duration, member, request id:
#: app/logs.py) to standard error, gunicorn's errorlog too, so systemd's journal has both. gunicorn's
#: own access log is off unless GUNICORN_ACCESS_LOG names a file or "-"; its lines then carry the
#: same request id, from the app's response header.
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s'
proc_name = "threshold-web"
