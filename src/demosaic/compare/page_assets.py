"""The style sheet and script of the comparison page (:mod:`demosaic.compare.page`), kept
apart from the Python that fills it in.

The script reads the page's JSON (``<script id="data">``): per file, per crop, one PNG data
URI per method (sRGB, the command's ``--exposure`` baked in). It decodes each once and draws
every canvas through a 256-entry table for the exposure control (sRGB -> linear x 2^EV ->
sRGB). Views of one crop share zoom and pan (scroll positions follow each other; drag pans).
Keys 1-9 choose the method of every blink view; the slider overlays method B on method A.
With ``#selftest`` in the URL it checks itself and writes a JSON verdict into
``<pre id="selftest">`` (for a headless browser's ``--dump-dom``).
"""

STYLE = """
body{font:14px system-ui,sans-serif;background:#222;color:#ddd;margin:0 1em 2em}
header{position:sticky;top:0;background:#222;padding:.5em 0;z-index:3;border-bottom:1px solid #444}
header label{margin-right:1.2em}
h2{margin:1em 0 .3em}h3{margin:.8em 0 .3em;font-size:1em}
.thumb{position:relative;display:inline-block}
.thumb img{display:block;width:768px;max-width:100%;image-rendering:auto}
.box{position:absolute;border:2px solid #ff0;color:#ff0;font-weight:bold;box-sizing:border-box;
 text-shadow:0 0 3px #000;padding:0 3px}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #444;padding:2px 6px;
 text-align:left;vertical-align:top;font-size:13px}
.row{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}
figure{margin:0}figcaption{font-size:12px;color:#aaa}
canvas{display:block;image-rendering:pixelated;image-rendering:crisp-edges}
.view{max-width:384px;max-height:384px;overflow:auto;background:#111;cursor:grab}
.ab{position:relative}.ab canvas.b{position:absolute;left:0;top:0}
"""

SCRIPT = r"""
(function(){
'use strict';
const D=JSON.parse(document.getElementById('data').textContent);
const errors=[];window.addEventListener('error',e=>errors.push(String(e.message)));
const px={};  // "f/c/m" -> ImageData of the crop as embedded
let ev=0,zoom=2,blink=0,slA=0,slB=Math.min(1,D.methods.length-1);
const toLin=v=>v<=0.04045?v/12.92:Math.pow((v+0.055)/1.055,2.4);
const toSrgb=v=>v<=0.0031308?v*12.92:1.055*Math.pow(v,1/2.4)-0.055;
function lut(){const k=Math.pow(2,ev),t=new Uint8ClampedArray(256);
 for(let i=0;i<256;i++)t[i]=Math.round(255*toSrgb(Math.min(1,toLin(i/255)*k)));return t;}
function draw(cv,m){const key=cv.dataset.f+'/'+cv.dataset.c+'/'+m,src=px[key];if(!src)return;
 cv.dataset.m=m;cv.width=src.width;cv.height=src.height;
 const s=cv.classList.contains('one')?1:zoom;
 cv.style.width=(src.width*s)+'px';cv.style.height=(src.height*s)+'px';
 const t=lut(),out=new ImageData(src.width,src.height),a=src.data,b=out.data;
 for(let i=0;i<a.length;i+=4){b[i]=t[a[i]];b[i+1]=t[a[i+1]];b[i+2]=t[a[i+2]];b[i+3]=255;}
 cv.getContext('2d',{willReadFrequently:true}).putImageData(out,0,0);}
function method(cv){if(cv.classList.contains('blink'))return blink;
 if(cv.classList.contains('a'))return slA;if(cv.classList.contains('b'))return slB;
 return +cv.dataset.m;}
function redraw(){document.querySelectorAll('canvas[data-f]').forEach(cv=>draw(cv,method(cv)));
 document.querySelectorAll('.bname').forEach(e=>e.textContent=(blink+1)+' '+D.methods[blink]);
 document.querySelectorAll('.abname').forEach(e=>e.textContent=D.methods[slA]+' | '+D.methods[slB]);}
function setBlink(i){if(i>=0&&i<D.methods.length){blink=i;redraw();}}
document.addEventListener('keydown',e=>{if(e.key>='1'&&e.key<='9')setBlink(+e.key-1);});
function control(id,fn){const el=document.getElementById(id);el.addEventListener('input',()=>{fn(el.value);redraw();});}
control('ev',v=>{ev=+v;document.getElementById('evv').textContent=(+v).toFixed(1);});
control('zoom',v=>{zoom=+v;});
control('sla',v=>{slA=+v;});control('slb',v=>{slB=+v;});
document.querySelectorAll('input.split').forEach(r=>r.addEventListener('input',()=>{
 r.closest('figure').querySelector('canvas.b').style.clipPath='inset(0 0 0 '+r.value+'%)';}));
let syncing=false;
document.querySelectorAll('.view').forEach(v=>{
 v.addEventListener('scroll',()=>{if(syncing)return;syncing=true;
  v.closest('.crop').querySelectorAll('.view').forEach(o=>{if(o!==v){o.scrollLeft=v.scrollLeft;o.scrollTop=v.scrollTop;}});
  syncing=false;});
 let drag=null;v.addEventListener('mousedown',e=>{drag=[e.clientX,e.clientY,v.scrollLeft,v.scrollTop];e.preventDefault();});
 window.addEventListener('mouseup',()=>{drag=null;});
 window.addEventListener('mousemove',e=>{if(drag){v.scrollLeft=drag[2]-(e.clientX-drag[0]);v.scrollTop=drag[3]-(e.clientY-drag[1]);}});});
function decode(f,c,m,uri){return new Promise((ok,bad)=>{const im=new Image();
 im.onload=()=>{const cv=document.createElement('canvas');cv.width=im.width;cv.height=im.height;
  const g=cv.getContext('2d',{willReadFrequently:true});g.drawImage(im,0,0);px[f+'/'+c+'/'+m]=g.getImageData(0,0,im.width,im.height);ok();};
 im.onerror=()=>bad(new Error('image '+f+'/'+c+'/'+m+' did not decode'));im.src=uri;});}
const jobs=[];D.files.forEach((F,f)=>F.crops.forEach((C,c)=>C.images.forEach((u,m)=>jobs.push(decode(f,c,m,u)))));
function hash(cv){const d=cv.getContext('2d').getImageData(0,0,cv.width,cv.height).data;let h=0;
 for(let i=0;i<d.length;i++)h=(h*31+d[i])>>>0;return h;}
function selftest(){const r={errors:errors,canvases:0,drawn:0,methods:D.methods.length};
 document.querySelectorAll('canvas[data-f]').forEach(cv=>{r.canvases++;if(cv.width>0&&hash(cv)!==0)r.drawn++;});
 const b=document.querySelector('canvas.blink');
 if(b&&D.methods.length>1){const h0=hash(b),m0=b.dataset.m;
  document.dispatchEvent(new KeyboardEvent('keydown',{key:'2'}));
  r.blink_before=m0;r.blink_after=b.dataset.m;r.picture_changed=hash(b)!==h0;
  document.dispatchEvent(new KeyboardEvent('keydown',{key:'1'}));}
 const z=document.querySelector('canvas.z'),e=document.getElementById('ev');
 if(z){const h0=hash(z);e.value='1';e.dispatchEvent(new Event('input'));
  r.exposure_changed=hash(z)!==h0;e.value='0';e.dispatchEvent(new Event('input'));}
 r.ok=errors.length===0&&r.drawn===r.canvases&&r.canvases>0&&r.exposure_changed===true&&
  (D.methods.length<2||r.picture_changed===true);
 document.getElementById('selftest').textContent=JSON.stringify(r);}
Promise.all(jobs).then(()=>{redraw();document.body.dataset.ready='1';
 if(location.hash==='#selftest')selftest();}).catch(e=>{errors.push(String(e));
 if(location.hash==='#selftest')selftest();});
})();
"""

__all__ = ["SCRIPT", "STYLE"]
