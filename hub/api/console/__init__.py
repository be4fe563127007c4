"""Static files of the operators' console, served by hub.api.routes.console.

A package only so that setuptools ships index.html, console.js and console.css with the wheel
(package-data); no Python here.

Vendored: `echarts.min.js` is Apache ECharts 5.6.0, the file `dist/echarts.common.min.js` of
the npm package `echarts@5.6.0` unchanged (the common build: line, bar, pie, scatter and the
usual components), under the Apache License 2.0: `echarts-LICENSE.txt`, `echarts-NOTICE.txt`,
and `echarts-LICENSE-d3.txt` for the d3 code it embeds. sha256 of echarts.min.js:
55974cf42cc160e6cf9099cd3ed8cdedfaa9779919fcee7e2272c85f6ca30e27. To upgrade: `npm pack
echarts@<version>`, then copy the same three licence files and the dist file.
"""
