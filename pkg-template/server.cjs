// @segops/sdk/server for require(): see server.mjs.
"use strict";

const { signUserId } = require("./node/segops_sdk.cjs");

module.exports = { signUserId };
