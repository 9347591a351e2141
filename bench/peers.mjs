// nginx and HAProxy as the benchmarks run them (bench/e2e.mjs, bench/workers.mjs): generated configs, started in
// the foreground as children killed by PID, with every path inside the bench's temp dir.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Starts nginx in the foreground with a generated config; resolves once its master is up. */
export async function startNginx(children, dir, name, conf, cpu) {
  const prefix = path.join(dir, `nginx-${name}`);
  mkdirSync(path.join(prefix, 'logs'), { recursive: true });
  const confPath = path.join(prefix, 'nginx.conf');
  writeFileSync(confPath, conf);
  // -e: the error log before the config is read (else nginx opens /var/log/nginx/error.log); -p: the prefix for
  // everything relative. `daemon off` keeps the master as our child, so its PID is known and killed by PID.
  const args = ['-p', prefix, '-e', path.join(prefix, 'logs/error.log'), '-c', confPath];
  const proc = children.spawn(`nginx-${name}`, 'nginx', args, { cpu, stdio: ['ignore', 'inherit', 'inherit'] });
  await sleep(200);
  if (proc.exitCode !== null) throw new Error(`nginx (${name}) exited ${proc.exitCode}; see ${prefix}/logs/error.log`);
  return proc;
}

/** Paths nginx would otherwise create under /var/lib/nginx; all inside our prefix. */
function nginxCommon(dir, name, workers = 1) {
  const p = path.join(dir, `nginx-${name}`);
  return `worker_processes ${workers};
daemon off;
pid ${p}/nginx.pid;
error_log ${p}/logs/error.log warn;
events { worker_connections 4096; }
`;
}

function nginxTempPaths(dir, name) {
  const p = path.join(dir, `nginx-${name}`);
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${p}/${t}_temp;`).join('\n');
}

export function nginxBackendsConf(dir, ports) {
  return `${nginxCommon(dir, 'backends')}
http {
${nginxTempPaths(dir, 'backends')}
  access_log off;
  # Unlimited requests per connection, so the balancers' keep-alive pools never churn because of the backend.
  keepalive_requests 1000000;
  keepalive_timeout 75s;
${ports.map((p) => `  server { listen 127.0.0.1:${p}; location / { return 200 "hello\\n"; } }`).join('\n')}
}
`;
}

export function nginxBalancerConf(dir, port, backendPorts, accessLog, workers = 1) {
  return `${nginxCommon(dir, 'balancer', workers)}
http {
${nginxTempPaths(dir, 'balancer')}
  access_log ${accessLog};
  # nginx closes a keep-alive connection after 1,000 requests by default (client side and upstream side);
  # Node, bulb and HAProxy do not, so without this the comparison would partly measure reconnects.
  keepalive_requests 1000000;
  upstream backends {
${backendPorts.map((p) => `    server 127.0.0.1:${p};`).join('\n')}
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backends;
      # Keep-alive to the backends needs HTTP/1.1 and no "Connection: close" from the client side.
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/** `h2`: HTTP/2 on both sides (`proto h2`), for the HTTP/2 and gRPC bench. */
export function haproxyConf(port, backendPorts, { threads = 1, h2 = false } = {}) {
  const proto = h2 ? ' proto h2' : '';
  return `global
  nbthread ${threads}
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  # Reuse idle server connections across client connections, like the other balancers' keep-alive pools.
  http-reuse always
frontend fe
  bind 127.0.0.1:${port}${proto}
  default_backend be
backend be
  balance roundrobin
${backendPorts.map((p, i) => `  server b${i + 1} 127.0.0.1:${p}${proto}`).join('\n')}
`;
}

