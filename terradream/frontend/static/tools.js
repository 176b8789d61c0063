/* terradream viewer tools: GIS client URLs to copy, an overview mini-map, a tile-grid debug overlay and a swipe
 * compare of two worlds. They read the map through window.terradreamViewer (app.js) and its "terradream:world"
 * event; like app.js they only use URLs relative to the page. The compare shows another world, or the same world
 * one zoom coarser (its tiles drawn at twice their size), right of a divider.
 */
(function () {
  "use strict";

  const viewer = window.terradreamViewer;
  const map = viewer.map;
  /** The mini-map shows this many zoom levels coarser than the main map. */
  const MINIMAP_ZOOM_OFFSET = 4;
  /** The compare choice "this world, one zoom coarser" (not a world name: those never hold "="). */
  const COARSER = "=coarser";

  const els = {
    grid: document.getElementById("grid-toggle"),
    compare: document.getElementById("compare-toggle"),
    compareSelect: document.getElementById("compare-select"),
    swipe: document.getElementById("swipe"),
    swipeRange: document.getElementById("swipe-range"),
    minimap: document.getElementById("minimap"),
    urls: {
      xyz: document.getElementById("url-xyz"),
      tilejson: document.getElementById("url-tilejson"),
      wmts: document.getElementById("url-wmts"),
    },
  };

  /* ---- Map URLs for GIS clients, with copy buttons ---- */

  /** Fill the URL fields for the world on screen. */
  function updateUrls() {
    const urls = viewer.clientUrls();
    if (!urls) return;
    Object.keys(els.urls).forEach((k) => {
      els.urls[k].value = urls[k];
    });
  }

  /** Copy an input's text: the Clipboard API where the page is a secure context, else the selection. */
  async function copyField(input, button) {
    input.select();
    let copied = false;
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(input.value);
        copied = true;
      }
    } catch (err) {
      copied = false;
    }
    if (!copied) copied = document.execCommand("copy");
    button.textContent = copied ? "Copied" : "Select + Ctrl-C";
    setTimeout(() => {
      button.textContent = "Copy";
    }, 1500);
  }

  document.querySelectorAll("button[data-copy]").forEach((button) => {
    button.addEventListener("click", () => copyField(document.getElementById(button.dataset.copy), button));
  });

  /* ---- Overview mini-map: the main view as a rectangle on a coarser map; a click there recentres ---- */

  const minimap = L.map(els.minimap, {
    attributionControl: false,
    zoomControl: false,
    dragging: false,
    scrollWheelZoom: false,
    doubleClickZoom: false,
    boxZoom: false,
    keyboard: false,
    touchZoom: false,
  });
  const viewRect = L.rectangle([[0, 0], [0, 0]], {
    weight: 2,
    color: "#ff7800",
    fillOpacity: 0.1,
    interactive: false,
  }).addTo(minimap);
  let minimapLayer = null;

  /** Move the mini-map to the main view (MINIMAP_ZOOM_OFFSET coarser) and redraw the view rectangle. */
  function syncMinimap() {
    if (!minimapLayer) return;
    const z = Math.max(minimapLayer.options.minZoom, map.getZoom() - MINIMAP_ZOOM_OFFSET);
    minimap.setView(map.getCenter(), z, { animate: false });
    viewRect.setBounds(map.getBounds());
  }

  /** Show world `name` on the mini-map, with the main layer's tile template. */
  function updateMinimap(name) {
    const template = viewer.tileTemplate(name);
    if (!template) return;
    if (minimapLayer) minimap.removeLayer(minimapLayer);
    minimapLayer = L.tileLayer(template, { minZoom: map.getMinZoom(), maxZoom: map.getMaxZoom(), keepBuffer: 0 });
    minimap.setMinZoom(map.getMinZoom());
    minimap.setMaxZoom(map.getMaxZoom());
    minimapLayer.addTo(minimap);
    minimap.invalidateSize();
    syncMinimap();
  }

  minimap.on("click", (e) => map.panTo(e.latlng));
  map.on("moveend zoomend", syncMinimap);

  /* ---- Tile-grid debug overlay: every tile's outline and z/x/y ---- */

  const TileGrid = L.GridLayer.extend({
    createTile: function (coords) {
      const tile = L.DomUtil.create("div", "td-grid-tile");
      tile.textContent = coords.z + "/" + coords.x + "/" + coords.y;
      return tile;
    },
  });
  const grid = new TileGrid({ pane: "overlayPane", zIndex: 10 });

  els.grid.addEventListener("change", () => {
    if (els.grid.checked) grid.addTo(map);
    else map.removeLayer(grid);
  });

  /* ---- Swipe compare: a second world over the first, shown right of a movable divider ---- */

  map.createPane("compare");
  const comparePane = map.getPane("compare");
  comparePane.style.zIndex = 250; // above the tile pane (200), below overlays (400)
  let compareLayer = null;
  let compareRequest = 0;

  /** Clip the compare pane to the right of the divider (in the pane's layer coordinates, which pan with the map). */
  function clipCompare() {
    if (!compareLayer) return;
    const size = map.getSize();
    const nw = map.containerPointToLayerPoint([0, 0]);
    const se = map.containerPointToLayerPoint(size);
    const x = nw.x + size.x * Number(els.swipeRange.value);
    comparePane.style.clip = "rect(" + nw.y + "px, " + se.x + "px, " + se.y + "px, " + x + "px)";
    els.swipe.style.setProperty("--divider", Number(els.swipeRange.value) * 100 + "%");
  }

  /** Drop the compare layer, if any. */
  function stopCompare() {
    compareRequest += 1;
    if (compareLayer) map.removeLayer(compareLayer);
    compareLayer = null;
    comparePane.style.clip = "";
    els.swipe.hidden = true;
  }

  /** Show `choice` right of the divider: a world (its tile template read from its TileJSON), or COARSER. */
  async function startCompare(choice) {
    stopCompare();
    const request = compareRequest;
    let template;
    try {
      template = choice === COARSER ? viewer.tileTemplate(viewer.world()) : await viewer.fetchTileTemplate(choice);
    } catch (err) {
      template = null;
    }
    if (request !== compareRequest) return;
    if (!template) {
      els.compare.checked = false;
      return;
    }
    // One zoom coarser: tiles of zoom z-1 drawn at 512 px fill the same ground as the zoom-z ones.
    const coarser = choice === COARSER ? { tileSize: 512, zoomOffset: -1 } : { tileSize: 256, zoomOffset: 0 };
    compareLayer = new window.terradreamTiles.CentreFirstTileLayer(template, {
      pane: "compare",
      minZoom: map.getMinZoom() - coarser.zoomOffset,
      maxZoom: map.getMaxZoom(),
      tileSize: coarser.tileSize,
      zoomOffset: coarser.zoomOffset,
      keepBuffer: 1,
    }).addTo(map);
    els.swipe.hidden = false;
    clipCompare();
  }

  /** Offer every world but the one on screen, and this world one zoom coarser; keep the choice where possible. */
  function fillCompareSelect() {
    const previous = els.compareSelect.value;
    const choices = viewer.worlds().filter((n) => n !== viewer.world()).map((n) => [n, n]);
    choices.push([COARSER, "one zoom coarser"]);
    els.compareSelect.replaceChildren(
      ...choices.map(([value, text]) => {
        const option = document.createElement("option");
        option.value = value;
        option.text = text;
        return option;
      })
    );
    if (choices.some(([value]) => value === previous)) els.compareSelect.value = previous;
    els.compareSelect.disabled = false;
  }

  /** Follow the toggle and the picked world. */
  function applyCompare() {
    if (els.compare.checked && els.compareSelect.value) startCompare(els.compareSelect.value);
    else stopCompare();
  }

  els.compare.addEventListener("change", applyCompare);
  els.compareSelect.addEventListener("change", applyCompare);
  els.swipeRange.addEventListener("input", clipCompare);
  map.on("move viewreset resize", clipCompare);
  // During a zoom animation the pane's coordinates change under the clip: hide the compare layer until it ends.
  map.on("zoomanim", () => {
    comparePane.style.visibility = "hidden";
  });
  map.on("zoomend", () => {
    clipCompare();
    comparePane.style.visibility = "";
  });

  /** Bring every tool to the world on screen. */
  function followWorld(world) {
    updateUrls();
    updateMinimap(world);
    fillCompareSelect();
    if (els.compare.checked) applyCompare();
  }

  document.addEventListener("terradream:world", (e) => followWorld(e.detail.world));
  // The viewer may have shown its first world before this file arrived (its fetches can beat this download).
  if (viewer.world() !== null) followWorld(viewer.world());

  viewer.tools = {
    minimap: minimap,
    grid: grid,
    compareLayer: () => compareLayer,
  };
})();
