/*
 * The offline shell: this service worker keeps a copy of the page's own files (never the
 * relay's answers, which are cross-origin and never cached) so that Accord opens without a
 * connection. Network first, so an update is picked up whenever the page is online.
 */
const CACHE = 'accord-shell-v1';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('message', (event) => {
  if (event.data?.type !== 'cache') return;
  const urls = event.data.urls.filter((url) => new URL(url).origin === self.location.origin);
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(urls)).catch(() => {}));
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(request, copy));
        }
        return response;
      })
      .catch(async () => {
        const cache = await caches.open(CACHE);
        const found = await cache.match(request, { ignoreSearch: request.mode === 'navigate' });
        return found ?? (await cache.match('./', { ignoreSearch: true })) ?? Response.error();
      }),
  );
});
