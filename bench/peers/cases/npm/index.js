// The npm case of bench/peers: the touched mode rewrites this file.
const express = require("express");
const touched = "0";
console.log(typeof express, touched);
