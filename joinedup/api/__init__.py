"""The citizen lookup API for the CRM front office (``create_api``) and its search-key index
(``refresh_search_keys``, for the merge to call on the master IDs it touched)."""
from joinedup.api.app import create_api
from joinedup.api.search_keys import build_search_keys, refresh_search_keys

__all__ = ["create_api", "refresh_search_keys", "build_search_keys"]
