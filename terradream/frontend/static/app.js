/* terradream viewer: Leaflet map of one generated world, driven by the server's /worlds and TileJSON.
 *
 * Everything the server sends (world names, descriptions, attribution) is written with textContent or
 * option.text, never as HTML; TileJSON's attribution, an HTML string, is first reduced to its text in an inert
 * document. The view lives in the URL hash as #world/z/lat/lon. Every URL is relative to the page, so the viewer
 * works behind a proxy that serves the server under a path prefix. Tile formats and request order: tiles.js.
 */
(function () {
  "use strict";

  const tiles = window.terradreamTiles;

  /** Metres per pixel at the equator at zoom 0 for 256 px Web Mercator tiles. */
  const EQUATOR_M_PER_PX_Z0 = 156543.034;
  /** World names the server accepts (mirrors terradream.model.worlds). */
  const WORLD_NAME_RE = /^[a-z0-9-]{1,32}$/;
  /** How often, and after how long (doubling), a failed tile is requested again. */
  const TILE_RETRIES = 3;
  const TILE_RETRY_BASE_MS = 2000;
  /** Latitude limit of Web Mercator tiles. */
  const MAX_LAT_DEG = 85.0511287798;
  /** A tile still loading after this long is being generated (a cached tile answers in a few milliseconds). */
  const GENERATING_AFTER_MS = 400;
  /** The page's directory ("http://host/prefix/"): the base every server URL is resolved against. */
  const PAGE_BASE_URL = new URL(".", location.href).href;

  const els = {
    form: document.getElementById("world-form"),
    select: document.getElementById("world-select"),
    custom: document.getElementById("world-custom"),
    input: document.getElementById("world-input"),
    resolution: document.getElementById("resolution"),
    cursor: document.getElementById("cursor"),
    message: document.getElementById("message"),
    loading: document.getElementById("loading"),
  };

  const state = {
    /** Configured worlds from GET /worlds: [{name, description, tilejson}]. */
    worlds: [],
    allowArbitrary: false,
    /** Name of the world on screen, or null before the first TileJSON arrived. */
    world: null,
    /** Current L.TileLayer. */
    layer: null,
    /** Tiles the current layer started loading and that have not finished: key -> start time (ms). */
    pending: new Map(),
    /** The TileJSON document of the world on screen. */
    tilejson: null,
    /** Timer that refreshes the loading hint when a pending tile crosses GENERATING_AFTER_MS. */
    loadingTimer: 0,
    /** Increments on every world switch so late TileJSON answers for an older request are dropped. */
    generation: 0,
    /** Counts of finished tile loads, for the page and for tests. */
    loaded: 0,
    failed: 0,
    /** Whether the map has been given a view (before that, Leaflet has no centre). */
    viewSet: false,
  };

  const map = L.map("map", {
    attributionControl: false,
    zoomControl: true,
    worldCopyJump: false,
    // Infinite horizontal pan (world copies); vertically the view stops at the poles.
    maxBounds: L.latLngBounds([-MAX_LAT_DEG, -1e7], [MAX_LAT_DEG, 1e7]),
    maxBoundsViscosity: 1.0,
    minZoom: 0,
    maxZoom: 0,
  });
  L.control.scale({ metric: true, imperial: false, position: "bottomleft" }).addTo(map);

  /** Attribution control whose text comes from TileJSON and is set as plain text. */
  const TextAttribution = L.Control.extend({
    options: { position: "bottomright" },
    onAdd: function () {
      const div = L.DomUtil.create("div", "leaflet-control-attribution td-attribution");
      L.DomEvent.disableClickPropagation(div);
      this._text = document.createElement("span");
      div.appendChild(this._text);
      return div;
    },
    /** Replace the shown attribution with `text` (plain text, may contain <>&). */
    setText: function (text) {
      this._text.textContent = text || "";
      this.getContainer().hidden = !text;
    },
  });
  const attribution = new TextAttribution().addTo(map);

  /** Show (or, with an empty string, hide) a message in the panel. */
  function showMessage(text) {
    els.message.textContent = text || "";
    els.message.hidden = !text;
  }

  /** The text of an HTML fragment (TileJSON attribution is HTML), parsed in an inert document: nothing runs or loads. */
  function htmlToText(html) {
    const text = new DOMParser().parseFromString(html, "text/html").body.textContent || "";
    return text.replace(/\s+/g, " ").trim();
  }

  /** Ground resolution in metres per pixel at latitude `latDeg` and zoom `z`. */
  function groundResolutionMPerPx(latDeg, z) {
    return (EQUATOR_M_PER_PX_Z0 * Math.cos((latDeg * Math.PI) / 180)) / Math.pow(2, z);
  }

  /** A metres-per-pixel value with precision that fits its size. */
  function formatMPerPx(mPerPx) {
    const digits = mPerPx >= 100 ? 0 : mPerPx >= 1 ? 2 : 3;
    return mPerPx.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) + " m/px";
  }

  /** "48.85000° N, 2.35000° E" style text for a LatLng (longitude wrapped to ±180). */
  function formatLatLng(latlng) {
    const w = latlng.wrap();
    const lat = Math.abs(w.lat).toFixed(5) + "\u00b0 " + (w.lat >= 0 ? "N" : "S");
    const lon = Math.abs(w.lng).toFixed(5) + "\u00b0 " + (w.lng >= 0 ? "E" : "W");
    return lat + ", " + lon;
  }

  /** Decimal places that keep a coordinate precise to about a pixel at zoom z. */
  function coordDigits(z) {
    return Math.max(2, Math.min(7, Math.ceil((z * Math.LN2) / Math.LN10) + 1));
  }

  /** Parse "#world/z/lat/lon" into {world, z, lat, lon}; null when absent or malformed. */
  function parseHash(hash) {
    const parts = decodeURIComponent(hash.replace(/^#/, "")).split("/");
    if (parts.length !== 4 || !WORLD_NAME_RE.test(parts[0])) return null;
    const z = Number(parts[1]);
    const lat = Number(parts[2]);
    const lon = Number(parts[3]);
    if (![z, lat, lon].every(Number.isFinite) || parts.slice(1).some((p) => p.trim() === "")) return null;
    return { world: parts[0], z: Math.round(z), lat: Math.max(-90, Math.min(90, lat)), lon: lon };
  }

  /** The permalink hash for the current view. */
  function viewHash() {
    const c = map.getCenter().wrap();
    const z = map.getZoom();
    const d = coordDigits(z);
    return "#" + state.world + "/" + z + "/" + Number(c.lat.toFixed(d)) + "/" + Number(c.lng.toFixed(d));
  }

  /** Write the current view into the URL without adding history entries or firing hashchange. */
  function writeHash() {
    if (state.world === null) return;
    const hash = viewHash();
    if (location.hash !== hash) history.replaceState(null, "", hash);
  }

  /** Refresh the resolution readout for the view centre. */
  function updateResolution() {
    els.resolution.textContent = formatMPerPx(groundResolutionMPerPx(map.getCenter().lat, map.getZoom()));
  }

  /** Pending tiles that have been loading for GENERATING_AFTER_MS or longer: the ones the server is generating. */
  function generatingCount() {
    const since = performance.now() - GENERATING_AFTER_MS;
    let n = 0;
    state.pending.forEach((start) => {
      if (start <= since) n += 1;
    });
    return n;
  }

  /** Refresh the loading hint from the pending tiles, counting only those being generated, not cached ones. */
  function updateLoading() {
    clearTimeout(state.loadingTimer);
    const now = performance.now();
    let next = Infinity;
    state.pending.forEach((start) => {
      if (start + GENERATING_AFTER_MS > now) next = Math.min(next, start + GENERATING_AFTER_MS);
    });
    if (next !== Infinity) state.loadingTimer = setTimeout(updateLoading, next - now + 1);
    const n = generatingCount();
    els.loading.hidden = n === 0;
    els.loading.textContent = n === 0 ? "" : "Generating " + n + (n === 1 ? " tile\u2026" : " tiles\u2026");
  }

  /** Key of a tile event's coordinates. */
  function tileKey(e) {
    return e.coords.z + "/" + e.coords.x + "/" + e.coords.y;
  }

  /** The TileJSON URL of world `name`, relative to the page (the absolute one in /worlds may lack a proxy prefix). */
  function tileJsonUrl(name) {
    return "tiles/" + encodeURIComponent(name) + "/tilejson.json";
  }

  /** The absolute URL of a server path given relative to the page (keeps {z}-style placeholders unencoded). */
  function serverUrl(relative) {
    return PAGE_BASE_URL + relative;
  }

  /** GET `url` as JSON; rejects with a readable Error on HTTP or parse failure. */
  async function fetchJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(url + " answered HTTP " + response.status);
    return response.json();
  }

  /** The first tile URL template of world `name`'s TileJSON, as given (refusing anything but http(s)).
   *
   * When it points at this server's /tiles/{name}/ route, only the part from there on is kept, resolved against
   * the page: a server behind a prefix-stripping proxy may not know its public prefix.
   */
  function tileTemplate(tilejson, name) {
    const template = Array.isArray(tilejson.tiles) ? tilejson.tiles[0] : null;
    if (typeof template !== "string") throw new Error("TileJSON has no tile URL");
    const route = template.lastIndexOf("/tiles/" + encodeURIComponent(name) + "/");
    const resolved = route >= 0 ? serverUrl(template.slice(route + 1)) : template;
    const protocol = new URL(resolved.replace(/[{}]/g, ""), location.href).protocol;
    if (protocol !== "http:" && protocol !== "https:") throw new Error("TileJSON tile URL is not http(s)");
    return resolved;
  }

  /** Schedule another load of a failed tile (the server answers 503 while its queue is full); false when given up.
   *
   * The tile stays pending meanwhile; Leaflet's own load/error listeners on the <img> fire again for the retry.
   */
  function retryTile(e, current) {
    const img = e.tile;
    const attempts = Number(img.dataset.retries || 0);
    if (attempts >= TILE_RETRIES) return false;
    img.dataset.retries = String(attempts + 1);
    const url = img.dataset.url || img.src;
    img.dataset.url = url;
    // A tile Leaflet dropped meanwhile already left state.pending through its tileunload event.
    setTimeout(() => {
      if (current() && img.isConnected) img.src = url;
    }, TILE_RETRY_BASE_MS * Math.pow(2, attempts));
    return true;
  }

  /** A tile layer for world `name` that keeps state.pending up to date. */
  function makeLayer(tilejson, name, minZoom, maxZoom) {
    const template = tiles.viewerTemplate(tileTemplate(tilejson, name));
    const layer = new tiles.CentreFirstTileLayer(template, {
      minZoom: minZoom,
      maxZoom: maxZoom,
      maxNativeZoom: maxZoom,
      noWrap: false,
      keepBuffer: 1,
      crossOrigin: false,
    });
    // Events of a layer that was switched away from no longer touch the shared counters.
    const current = () => state.layer === layer;
    const done = (e) => {
      if (!current()) return;
      state.pending.delete(tileKey(e));
      updateLoading();
    };
    layer.on("tileloadstart", (e) => {
      if (!current()) return;
      state.pending.set(tileKey(e), performance.now());
      updateLoading();
    });
    layer.on("tileload", (e) => {
      if (current()) state.loaded += 1;
      done(e);
    });
    layer.on("tileerror", (e) => {
      if (!current()) return;
      if (retryTile(e, current)) return;
      state.failed += 1;
      showMessage("Some tiles failed to load (" + state.failed + ").");
      done(e);
    });
    layer.on("tileabort tileunload", done);
    return layer;
  }

  /** Fill the world picker from GET /worlds; falls back to "earth" when the list cannot be read. */
  async function loadWorlds() {
    try {
      const body = await fetchJson("worlds");
      state.worlds = (Array.isArray(body.worlds) ? body.worlds : []).filter(
        (w) => w && typeof w.name === "string" && WORLD_NAME_RE.test(w.name)
      );
      state.allowArbitrary = body.allow_arbitrary === true;
    } catch (err) {
      showMessage("Could not list worlds: " + err.message);
      state.worlds = [{ name: "earth", description: "", tilejson: null }];
    }
    els.select.replaceChildren(
      ...state.worlds.map((w) => {
        const option = document.createElement("option");
        option.value = w.name;
        option.text = w.name;
        if (typeof w.description === "string") option.title = w.description;
        return option;
      })
    );
    els.custom.hidden = !state.allowArbitrary;
  }

  /** Make the picker show `name`, adding an option for a typed (arbitrary) world. */
  function selectWorldOption(name) {
    let option = Array.from(els.select.options).find((o) => o.value === name);
    if (!option) {
      option = document.createElement("option");
      option.value = name;
      option.text = name;
      option.dataset.custom = "1";
      els.select.add(option);
    }
    els.select.value = name;
  }

  /** Switch the map to world `name`, then to `view` ({z, lat, lon}) or the TileJSON centre. */
  async function showWorld(name, view) {
    const generation = ++state.generation;
    let tilejson;
    try {
      tilejson = await fetchJson(tileJsonUrl(name));
    } catch (err) {
      showMessage("Could not open world \u201c" + name + "\u201d: " + err.message);
      if (state.world !== null) selectWorldOption(state.world);
      return;
    }
    if (generation !== state.generation) return; // a newer switch won
    const minZoom = Number.isInteger(tilejson.minzoom) ? tilejson.minzoom : 0;
    const maxZoom = Number.isInteger(tilejson.maxzoom) ? tilejson.maxzoom : 18;
    let layer;
    try {
      layer = makeLayer(tilejson, name, minZoom, maxZoom);
    } catch (err) {
      showMessage("Could not open world \u201c" + name + "\u201d: " + err.message);
      return;
    }
    showMessage("");
    if (state.layer) map.removeLayer(state.layer);
    state.pending.clear();
    state.layer = layer;
    state.world = name;
    state.tilejson = tilejson;
    selectWorldOption(name);
    attribution.setText(typeof tilejson.attribution === "string" ? htmlToText(tilejson.attribution) : "");
    document.title = "terradream \u2013 " + name;

    map.setMinZoom(minZoom);
    map.setMaxZoom(maxZoom);
    const center =
      Array.isArray(tilejson.center) && tilejson.center.length === 3 && tilejson.center.every(Number.isFinite)
        ? tilejson.center
        : [0, 0, minZoom];
    const target = view || (state.viewSet ? null : { lon: center[0], lat: center[1], z: center[2] });
    if (target) {
      const z = Math.max(minZoom, Math.min(maxZoom, Number.isFinite(target.z) ? target.z : minZoom));
      map.setView([target.lat, target.lon], z, { animate: false });
      state.viewSet = true;
    } else if (map.getZoom() > maxZoom || map.getZoom() < minZoom) {
      map.setZoom(Math.max(minZoom, Math.min(maxZoom, map.getZoom())), { animate: false });
    }
    layer.addTo(map);
    updateLoading();
    updateResolution();
    writeHash();
    document.dispatchEvent(new CustomEvent("terradream:world", { detail: { world: name } }));
  }

  /** Apply the URL hash if it names a different view than the one shown. */
  function applyHash() {
    const view = parseHash(location.hash);
    if (!view) return;
    if (view.world !== state.world) {
      showWorld(view.world, view);
      return;
    }
    const c = map.getCenter();
    if (view.z !== map.getZoom() || Math.abs(view.lat - c.lat) > 1e-9 || Math.abs(view.lon - c.wrap().lng) > 1e-9) {
      map.setView([view.lat, view.lon], view.z, { animate: false });
    }
  }

  map.on("moveend zoomend", () => {
    updateResolution();
    writeHash();
  });
  map.on("mousemove", (e) => {
    els.cursor.textContent = formatLatLng(e.latlng);
  });
  map.on("mouseout", () => {
    els.cursor.textContent = "\u2013";
  });
  window.addEventListener("hashchange", applyHash);

  els.select.addEventListener("change", () => {
    if (els.select.value && els.select.value !== state.world) showWorld(els.select.value, null);
  });
  els.form.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = els.input.value.trim().toLowerCase();
    if (!state.allowArbitrary) return;
    if (!WORLD_NAME_RE.test(name)) {
      showMessage("World names are 1\u201332 lowercase letters, digits or hyphens.");
      return;
    }
    els.input.value = "";
    if (name !== state.world) showWorld(name, null);
  });

  /** Start: read worlds, then open the world in the hash (or the first configured one). */
  async function start() {
    await loadWorlds();
    const view = parseHash(location.hash);
    const first = state.worlds.length ? state.worlds[0].name : "earth";
    await showWorld(view ? view.world : first, view);
    if (state.world === null && view && view.world !== first) await showWorld(first, null);
  }

  // A read-only handle for the viewer's tools (tools.js), debugging in the console and the browser tests.
  window.terradreamViewer = {
    map: map,
    world: () => state.world,
    worlds: () => state.worlds.map((w) => w.name),
    /** Leaflet template of world `name`'s tiles as this viewer loads them; null before its TileJSON arrived. */
    tileTemplate: (name) =>
      name === state.world && state.tilejson ? tiles.viewerTemplate(tileTemplate(state.tilejson, name)) : null,
    /** Leaflet template of any world's tiles, read from its TileJSON (for the compare layer). */
    fetchTileTemplate: (name) =>
      fetchJson(tileJsonUrl(name)).then((tilejson) => tiles.viewerTemplate(tileTemplate(tilejson, name))),
    /** Absolute URLs for GIS clients: the XYZ template as the server gives it, TileJSON and WMTS capabilities. */
    clientUrls: () =>
      state.tilejson === null
        ? null
        : {
            xyz: tileTemplate(state.tilejson, state.world),
            tilejson: serverUrl(tileJsonUrl(state.world)),
            wmts: serverUrl("wmts/WMTSCapabilities.xml"),
          },
    tileExt: tiles.TILE_EXT,
    pendingTiles: () => state.pending.size,
    generatingTiles: generatingCount,
    loadedTiles: () => state.loaded,
    failedTiles: () => state.failed,
    ready: start(),
  };
})();
