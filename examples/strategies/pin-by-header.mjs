// A custom bulb strategy: send a request to the backend named in its `X-Backend` header, otherwise round robin.
//
//   bulb --strategy ./examples/strategies/pin-by-header.mjs ...
//   curl -H 'X-Backend: api-2' http://localhost:8080/debug   # reaches api-2 only
//
// Why you would want it: to reproduce a bug on one replica, to warm or smoke-test a new backend before it takes
// traffic, or to compare two versions side by side, without touching the pool. The header may carry a backend's
// id or its URL. If the named backend is not a candidate (unknown, unhealthy or draining) the request is served
// by round robin rather than failed, so a stale header in a client never turns into an outage.
//
// A strategy module's default export is a factory `(ctx) => ({ name, pick })` (or the `{ name, pick }` object
// itself). `pick(candidates, req)` runs on the request path: it must not block, throw or do I/O. `candidates` are
// the routable backends ({ id, url, weight, inflight, ewmaMs }), never empty, and the same array object until
// the pool changes, so derived data can be cached on its identity, as the index below is.

/** Lower-case: Node lower-cases incoming header names. Change it here to use another header. */
const HEADER = 'x-backend';

export default function pinByHeader(_ctx) {
  let indexed = null; // the candidates array `byName` was built for
  let byName = new Map(); // id and url -> candidate
  let next = 0; // round-robin position

  return {
    name: 'pin-by-header',
    pick(candidates, req) {
      const wanted = req.headers[HEADER];
      if (typeof wanted === 'string' && wanted !== '') {
        if (candidates !== indexed) {
          byName = new Map();
          for (const c of candidates) byName.set(c.id, c).set(c.url, c);
          indexed = candidates;
        }
        const pinned = byName.get(wanted);
        if (pinned !== undefined) return pinned;
      }
      if (next >= candidates.length) next = 0;
      return candidates[next++];
    },
  };
}
