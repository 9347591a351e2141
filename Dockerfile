# syntax=docker/dockerfile:1
# bulb as a container: `docker build -t bulb .`, then `docker run --rm -p 8080:8080 bulb --backend http://host:port`.
# Arguments after the image name go straight to bulb (ENTRYPOINT is bulb itself); the CMD below is only the
# default: serve on 8080, admin API on 9901 (reachable from other containers and probes), backend files from
# /etc/bulb/backends (mount a directory or a ConfigMap there).
ARG NODE_IMAGE=node:24-bookworm-slim

# Build: dev dependencies (TypeScript) compile src/ to dist/src/.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: the build needs tsc only, and tsx's esbuild binary is for the test suite.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Production dependencies only, installed on their own so this layer is cached until the lockfile changes.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# Runtime: Node, production node_modules, the compiled JavaScript and package.json (bulb reads its version there).
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json ./
# The default watch directory exists even when nothing is mounted, so bulb starts and reports it empty.
RUN mkdir -p /etc/bulb/backends && chown node:node /etc/bulb/backends
# The official image's unprivileged user (uid 1000). bulb needs no privilege: its default ports are above 1024.
USER node
EXPOSE 8080 9901
# Node rather than curl or wget, which the slim image does not have. Liveness only (/healthz): readiness
# (/readyz) is for load balancers and orchestrators, and is 503 while no backend is routable.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "require('node:http').get('http://127.0.0.1:9901/healthz', (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1)).setTimeout(2000, () => process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/src/cli/bin.js"]
CMD ["--listen", "0.0.0.0:8080", "--admin", "0.0.0.0:9901", "--watch-dir", "/etc/bulb/backends"]
