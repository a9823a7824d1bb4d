/*
 * vit-wasm coi-serviceworker.js: threads on static hosts that cannot send headers (GitHub Pages and
 * the like). Threads need SharedArrayBuffer, which browsers give only to cross-origin isolated
 * pages, i.e. pages served with "Cross-Origin-Opener-Policy: same-origin" and
 * "Cross-Origin-Embedder-Policy: require-corp" (or credentialless). This one file is both:
 *   - in the page (<script src="coi-serviceworker.js"></script>, first in <head>): registers itself
 *     as a service worker and reloads the page once, so that the page is served through it;
 *   - in the service worker: passes every same-origin response through with those two headers added.
 * Serve it from the folder of your pages (a service worker controls only its folder and below), over
 * https or from localhost. Add data-coep="credentialless" to the script tag to let cross-origin images
 * without CORP headers load (Chrome, Firefox; Safari supports only require-corp).
 * It does nothing where the page is already isolated or service workers are unavailable.
 */
/* eslint-disable no-restricted-globals */
(() => {
  if (typeof window === 'undefined') {
    // The service worker.
    const coep =
      new URL(self.location.href).searchParams.get('coep') === 'credentialless' ? 'credentialless' : 'require-corp';
    self.addEventListener('install', () => self.skipWaiting());
    self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
    self.addEventListener('fetch', (e) => {
      const req = e.request;
      if (req.cache === 'only-if-cached' && req.mode !== 'same-origin') return; // a Chrome quirk: fetch() would throw
      if (new URL(req.url).origin !== self.location.origin) return; // other origins: left to the browser
      e.respondWith(
        fetch(req).then((r) => {
          if (r.status === 0) return r; // opaque: headers cannot be changed
          const headers = new Headers(r.headers);
          headers.set('Cross-Origin-Opener-Policy', 'same-origin');
          headers.set('Cross-Origin-Embedder-Policy', coep);
          return new Response(r.body, { status: r.status, statusText: r.statusText, headers });
        }),
      );
    });
    return;
  }
  // The page.
  if (window.crossOriginIsolated) {
    sessionStorage.removeItem('vit-wasm-coi-reload');
    return;
  }
  const script = document.currentScript;
  if (!window.isSecureContext || !navigator.serviceWorker || !script) {
    console.warn(
      'vit-wasm coi-serviceworker: service workers are unavailable here (https or localhost is needed); threads stay off',
    );
    return;
  }
  const url = new URL(script.src);
  if (script.dataset.coep === 'credentialless') url.searchParams.set('coep', 'credentialless');
  navigator.serviceWorker.register(url.href).then(
    (reg) => {
      if (!reg) return; // registration refused without an error (service workers blocked)
      // Reload once to be served through the worker; a second failure means the browser refuses isolation.
      const reload = () => {
        if (sessionStorage.getItem('vit-wasm-coi-reload')) {
          console.warn(
            'vit-wasm coi-serviceworker: the page is still not cross-origin isolated after a reload; threads stay off',
          );
          return;
        }
        sessionStorage.setItem('vit-wasm-coi-reload', '1');
        window.location.reload();
      };
      if (navigator.serviceWorker.controller) reload();
      else if (reg.active) reload();
      else navigator.serviceWorker.addEventListener('controllerchange', reload, { once: true });
    },
    (e) => console.warn(`vit-wasm coi-serviceworker: registration failed (${e.message}); threads stay off`),
  );
})();
