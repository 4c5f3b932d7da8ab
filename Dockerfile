# One image for all five Sagaflow processes; docker-compose.yml picks the entry point per service,
# e.g. `node orchestrator/dist/main.js` or `node services/inventory/dist/main.js`.

# Workspace manifests only, so that the install layers stay cached until dependencies change.
FROM node:24-slim AS manifests
WORKDIR /app
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY orchestrator/package.json orchestrator/
COPY services/order/package.json services/order/
COPY services/inventory/package.json services/inventory/
COPY services/payment/package.json services/payment/
COPY services/notification/package.json services/notification/

FROM manifests AS build
# --ignore-scripts: the native swc and watcher binaries come as optional dependencies already, and the
# `node` devDependency's script would only download a second node; the image's own node builds.
# `npm ci`: exactly the lock, which holds every platform's native builds (test/compose.static.test.ts checks).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
# Not `npm run build`: that would put the `node` devDependency first on PATH.
RUN node scripts/build.mjs

FROM manifests AS runtime
ENV NODE_ENV=production
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/shared/dist shared/dist
COPY --from=build /app/orchestrator/dist orchestrator/dist
COPY --from=build /app/services/order/dist services/order/dist
COPY --from=build /app/services/inventory/dist services/inventory/dist
COPY --from=build /app/services/payment/dist services/payment/dist
COPY --from=build /app/services/notification/dist services/notification/dist
# Files stay root-owned (read-only to the process); nothing is written at runtime.
USER node
CMD ["node", "orchestrator/dist/main.js"]
