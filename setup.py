"""Install cubicweb-haops, with its metadata read from cubicweb_haops/__pkginfo__.py."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def read_pkginfo():
    """Execute __pkginfo__.py without importing the package, which needs CubicWeb."""
    namespace = {}
    exec((HERE / "cubicweb_haops" / "__pkginfo__.py").read_text(), namespace)
    return namespace


PKGINFO = read_pkginfo()

setup(
    name=PKGINFO["distname"],
    version=PKGINFO["version"],
    license=PKGINFO["license"],
    description=PKGINFO["description"],
    long_description=(HERE / "README.rst").read_text(),
    long_description_content_type="text/x-rst",
    author=PKGINFO["author"],
    author_email=PKGINFO["author_email"],
    url=PKGINFO["web"],
    classifiers=PKGINFO["classifiers"],
    python_requires=">= 3.11",
    packages=find_packages(exclude=["test", "test.*"]),
    install_requires=[
        f"{name} {spec}".strip() for name, spec in PKGINFO["__depends__"].items()
    ],
    extras_require={
        "postgresql": ["psycopg2-binary >= 2.9"],
        "test": ["pytest", "webtest", "psycopg2-binary >= 2.9", "pillow", "selenium >= 4.10", "WSGIProxy2"],
    },
    package_data={"cubicweb_haops": ["i18n/*.po", "migration/*.py"]},
    entry_points={
        "cubicweb.cubes": ["haops = cubicweb_haops"],
        "console_scripts": ["check_haops = cubicweb_haops.nagios:main"],
    },
    zip_safe=False,
)
