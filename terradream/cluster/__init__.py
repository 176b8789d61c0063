"""Scale-out: Dask task contract, the API-side cluster client service and the tile worker.

Keep this file free of imports: the Dask scheduler imports terradream.cluster.tasks (and so this package) only to
unpickle task specs, without torch or the server.
"""
