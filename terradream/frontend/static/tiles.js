/* terradream viewer tiles: which format and scale the viewer asks for, and a tile layer that asks centre first.
 *
 * WebP where the browser can encode it (a fair proxy for decoding it), else JPEG; @2x on HiDPI screens through
 * Leaflet's {r} placeholder. Cold tiles are generated in request order, so the middle of the view comes first.
 */
(function () {
  "use strict";

  /** Tile image format: WebP where this browser can encode it (so surely decode it), else JPEG. */
  const TILE_EXT = document.createElement("canvas").toDataURL("image/webp").startsWith("data:image/webp")
    ? "webp"
    : "jpg";

  /** The viewer's own tile template: `template` asking for TILE_EXT tiles, @2x on HiDPI screens (Leaflet's {r}). */
  function viewerTemplate(template) {
    return template.replace(/\{y\}(@2x)?\.(png|jpg|webp)/, "{y}{r}." + TILE_EXT);
  }

  /** A tile layer that requests each batch of new tiles nearest the view centre first (by tile centres).
   *
   * Leaflet sorts its queue by the distance of tile corners to the middle of the tile index range, up to half a
   * tile off; the server generates cold tiles in request order, so the centre of the view should come first.
   */
  const CentreFirstTileLayer = L.TileLayer.extend({
    _update: function (center) {
      const outer = this._deferred;
      this._deferred = [];
      L.TileLayer.prototype._update.call(this, center);
      const queue = this._deferred;
      this._deferred = outer;
      if (queue.length === 0 || !this._map || !this._level) return;
      const size = this.getTileSize();
      const c = this._map.project(center || this._map.getCenter(), this._tileZoom);
      const distance = (p) => Math.hypot((p.x + 0.5) * size.x - c.x, (p.y + 0.5) * size.y - c.y);
      queue.sort((a, b) => distance(a) - distance(b));
      queue.forEach((coords) => L.TileLayer.prototype._addTile.call(this, coords, this._level.el));
    },
    _addTile: function (coords, container) {
      if (this._deferred) this._deferred.push(coords);
      else L.TileLayer.prototype._addTile.call(this, coords, container);
    },
  });

  window.terradreamTiles = {
    TILE_EXT: TILE_EXT,
    viewerTemplate: viewerTemplate,
    CentreFirstTileLayer: CentreFirstTileLayer,
  };
})();
