# syntax=docker/dockerfile:1
#
# session-gateway image: build with TypeScript, run the compiled dist/ without it.
#
#   docker build -t session-gateway .
#   docker run --rm -p 8080:8080 -e UPSTREAM_URL=https://api.openai.com/v1 session-gateway
#   docker stop -t 35 <container>    # -t must exceed SHUTDOWN_GRACE_MS (30 s by default)
#
# Base image: Debian bookworm-slim rather than Alpine. Node's Alpine builds are an
# "experimental" tier, and musl's resolver handles search domains and large DNS answers
# differently from glibc; the gateway resolves its upstream on every new connection, so it
# should resolve the way the rest of a cluster does. Slim costs ~25 MB more than Alpine.
# Pin a digest (node:24-bookworm-slim@sha256:…) in production for reproducible builds.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The build needs TypeScript and @types/node only. --omit=optional skips the 400 MB native
# binary that the @openai/codex devDependency pulls in; --ignore-scripts skips the one install
# script (protobufjs's, a devDependency's, which the build does not need).
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=optional --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim AS runtime
# No HOST or PORT here: the gateway's defaults (0.0.0.0:8080) are what a container needs, and
# an ENV would beat a mounted YAML file's server.host and server.port (the environment wins).
ENV NODE_ENV=production
WORKDIR /app
# Production dependencies only, from the lockfile: no TypeScript, tap or codex in the image.
# Everything stays owned by root, so the process (user node) cannot rewrite its own code.
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund
COPY config.example.yaml ./
COPY --from=build /app/dist/src ./dist/src
# Node 24 keeps compiled code on disk: warmed here (--help loads every module a default start
# loads, then exits), read at every start. Measured locally on Node 24: ~180 ms to the first
# /healthz with the cache, ~210-300 ms without. Node keys the cache directory by uid, so it is
# warmed as the user that runs the gateway (warmed as root, uid 1000 found no cache of its own
# and silently ran without one); then handed back to root and made readable: read-only at run
# time, like the code.
ENV NODE_COMPILE_CACHE=/app/.node-compile-cache
RUN mkdir .node-compile-cache && chown 1000:1000 .node-compile-cache
USER 1000:1000
RUN node dist/src/cli.js --help >/dev/null
USER root
RUN chown -R root:root .node-compile-cache && chmod -R a+rX .node-compile-cache

# The image's `node` user (uid 1000), by number so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080

# /healthz with the node binary the image already has (no curl or wget in slim images), on the
# port the settings give: PORT, else server.port in CONFIG_FILE's file, else 8080.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "dist/src/health-check.js", "/healthz"]

# PID 1 is node itself (exec form: no shell in between to swallow signals). The CLI traps
# SIGTERM and SIGINT, stops accepting, drains in-flight streams for SHUTDOWN_GRACE_MS, then
# exits 0. The kernel gives PID 1 no default signal actions, which is fine because node
# installs its own; and the gateway spawns no child processes, so there are no zombies to
# reap and no init (tini, `docker run --init`) is needed. Add `--init` only if that changes.
# Not `npm start`: npm would sit at PID 1 and its prestart step expects TypeScript.
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/cli.js"]
