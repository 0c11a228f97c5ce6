"""Loading python-iptables on first use, without setuptools' distutils shim."""
import sys
import warnings


def load_iptc():
    """The ``iptc`` module. Imported on first use: loading libiptc needs the iptables libraries,
    and the app (and its unit tests) must start without them."""
    if "iptc" not in sys.modules:
        # python-iptables imports distutils.sysconfig (for get_python_lib only). In a virtualenv,
        # setuptools' distutils shim answers that import by loading setuptools and pkg_resources:
        # +16 MB resident and ~100 ms at start-up, for nothing. Import it with the shim aside
        # (the standard library's distutils, or iptc's own fallback where there is none).
        shims = [f for f in sys.meta_path if type(f).__module__ == "_distutils_hack"]
        for finder in shims:
            sys.meta_path.remove(finder)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                import iptc  # noqa: F401
        finally:
            sys.meta_path[0:0] = shims
    import iptc

    return iptc
