import http from 'k6/http';
import { group, sleep } from 'k6';
const BASE = __ENV.BASE;
export const options = {
  scenarios: {
    browse: { executor: 'constant-vus', vus: 2, duration: '2500ms', exec: 'browse' },
    checkout: { executor: 'per-vu-iterations', vus: 1, iterations: 4, exec: 'checkout', startTime: '500ms' },
  },
};
export function browse() {
  group('catalogue', function () {
    http.get(`${BASE}/items`, { tags: { requirement: 'REQ-BROWSE' } });
    http.get(`${BASE}/items/${__ITER % 3}`, { tags: { requirement: 'REQ-BROWSE', name: 'GET /items/{id}' } });
  });
  sleep(0.25);
}
export function checkout() {
  http.post(`${BASE}/fail`, 'x', { tags: { requirement: 'REQ-CHECKOUT', name: 'POST /checkout' } });
  http.get('http://127.0.0.1:9/closed', { tags: { requirement: 'REQ-CHECKOUT', name: 'GET closed port' }, timeout: '1s' });
  http.get(`${BASE}/items`);
  sleep(0.3);
}
